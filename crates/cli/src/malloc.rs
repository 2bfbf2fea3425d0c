//! glibc allocator settings for the server.
//!
//! A streamed upload allocates a buffer per received chunk on the runtime thread, and the
//! writer thread frees it once written. With glibc's defaults the freed memory at the top of
//! the heap is handed back to the kernel at once (trim threshold 128 KiB) and asked for again
//! by the next chunk, so every page of a 1 GiB upload was faulted in and zeroed anew, and
//! the PUT took up to twice the CPU. Keeping up to 64 MiB of freed memory, and serving
//! blocks below 32 MiB from the heap instead of separate mappings, ends that churn; idle
//! memory is unchanged (only memory once used is kept).

/// Freed heap memory kept for reuse before any is returned to the kernel.
const TRIM_THRESHOLD: i32 = 64 << 20;
/// Blocks from this size up get their own mapping (glibc's largest allowed value).
const MMAP_THRESHOLD: i32 = 32 << 20;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn keep_freed_memory() {
    // SAFETY: mallopt only changes two allocator parameters; it is called before the
    // runtime starts any thread, and glibc accepts both values (it returns 0 if not).
    let done = unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    };
    if !done {
        tracing::debug!("the allocator kept its default trim and mmap thresholds");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn keep_freed_memory() {}
