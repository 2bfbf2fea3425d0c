//! glibc allocator settings for the server.
//!
//! A streamed upload allocates a buffer per received chunk on the runtime thread, and the
//! writer thread frees it once written. With glibc's defaults the freed memory at the top of
//! the heap is handed back to the kernel at once (trim threshold 128 KiB) and asked for again
//! by the next chunk, so every page of a 1 GiB upload was faulted in and zeroed anew, and
//! the PUT took up to twice the CPU. An upload has a few MiB in flight (the write queue and
//! one gathered write), so keeping up to 16 MiB of freed memory per arena ends that churn.
//! Setting it turns off glibc's self-tuning mmap threshold, so that one is set too: blocks
//! up to 4 MiB (read buffers, gathered small bodies) come from the heap. Idle memory at
//! start is unchanged; after a burst of uploads the process keeps what it used, up to the
//! trim threshold per arena.

/// Freed heap memory kept for reuse before any is returned to the kernel.
const TRIM_THRESHOLD: i32 = 16 << 20;
/// Blocks from this size up get their own mapping.
const MMAP_THRESHOLD: i32 = 4 << 20;

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
