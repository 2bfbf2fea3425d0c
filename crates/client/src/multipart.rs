//! A streaming `multipart/form-data` body for bulk upload: files are read as they are sent.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use crate::ClientError;

/// Escapes a file name for a `filename="…"` parameter the way HTML forms do.
fn quote(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The content type, the exact length, and the body of a form with one `file` part per
/// `(name, local path)`.
pub(crate) async fn encode(
    files: &[(String, PathBuf)],
) -> Result<
    (
        String,
        u64,
        impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    ),
    ClientError,
> {
    let boundary = format!("davit-{}", uuid::Uuid::new_v4().simple());
    let mut parts = Vec::new();
    let mut len = 0u64;
    for (name, path) in files {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| ClientError::io(format!("reading {}", path.display()), e))?
            .len();
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            quote(name)
        );
        len += head.len() as u64 + size + 2;
        parts.push((Bytes::from(head), path.clone()));
    }
    let tail = Bytes::from(format!("--{boundary}--\r\n"));
    len += tail.len() as u64;
    let body = stream::iter(parts)
        .then(|(head, path)| async move {
            let file = tokio::fs::File::open(&path).await?;
            let data = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
            Ok::<_, std::io::Error>(
                stream::once(async move { Ok(head) })
                    .chain(data)
                    .chain(stream::once(async { Ok(Bytes::from_static(b"\r\n")) })),
            )
        })
        .flat_map(|part| match part {
            Ok(s) => s.left_stream(),
            Err(e) => stream::once(async move { Err(e) }).right_stream(),
        })
        .chain(stream::once(async move { Ok(tail) }));
    Ok((
        format!("multipart/form-data; boundary={boundary}"),
        len,
        body,
    ))
}
