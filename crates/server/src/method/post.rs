//! POST of `multipart/form-data` to a collection: bulk upload. Each file part is stored as
//! a member of the collection, streamed and atomic like a PUT, with the same lock checks,
//! and the answer is a 207 with one `response` per part (201, 204, or the part's error). A
//! browser's form (which prefers HTML) is sent back to the listing instead.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use davit_proto::{MultistatusWriter, ResourceKind, ResourcePath};
use davit_store::{ByteStream, StorageError, WriteOutcome};
use futures_util::StreamExt;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, LOCATION, ORIGIN};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::precondition::{Change, check_write};
use crate::request::{Body, DavRequest, body_stream, limit_stream, upload_too_large};
use crate::tree::{forget_stale, multistatus};

use super::get::header_value;
use super::{allow_for, status};

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
    body: &mut Body,
) -> Result<Response<DavBody>, DavError> {
    if from_another_site(server, req) {
        return Err(DavError::forbidden(
            "a form from another site may not upload here (its page is not this server's, \
             nor an origin allowed by --cors-origin)",
        ));
    }
    let meta = server
        .storage()
        .metadata(&req.path)
        .await
        .map_err(DavError::from_storage)?;
    if !meta.kind.is_collection() {
        return Err(DavError::method_not_allowed(
            "POST uploads files into a collection",
            allow_for(Some(meta.kind), false),
        ));
    }
    let content_type = req.header(CONTENT_TYPE)?.unwrap_or_default();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        DavError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST to a collection takes multipart/form-data",
        )
    })?;
    let mut form = multer::Multipart::new(body_stream(body.take()), boundary);
    let mut w = MultistatusWriter::new(&server.config.base_path);
    let mut parts = 0usize;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                if parts == 0 {
                    return Err(DavError::bad_request(format!(
                        "the multipart body is malformed: {e}"
                    )));
                }
                tracing::warn!(dir = ?req.path, error = %e, "bulk upload cut off");
                w.status_response(
                    &req.path,
                    ResourceKind::Collection,
                    400,
                    None,
                    Some("the multipart body ended early; the parts listed before were handled"),
                );
                break;
            }
        };
        let Some(raw_name) = field.file_name().map(str::to_owned) else {
            // A plain form field, not a file.
            drain(field).await;
            continue;
        };
        parts += 1;
        let shared = Arc::new(Mutex::new(field));
        let outcome = store_part(server, req, &raw_name, Arc::clone(&shared)).await;
        drain_shared(&shared).await;
        drop(shared);
        match outcome {
            Ok((path, WriteOutcome::Created)) => {
                w.status_response(&path, ResourceKind::File, 201, None, None)
            }
            Ok((path, WriteOutcome::Replaced)) => {
                w.status_response(&path, ResourceKind::File, 204, None, None)
            }
            Err((path, e)) => {
                // A part without a usable name is reported against the collection.
                let (path, kind) = match path {
                    Some(p) => (p, ResourceKind::File),
                    None => (req.path.clone(), ResourceKind::Collection),
                };
                w.status_response(
                    &path,
                    kind,
                    e.status().as_u16(),
                    e.condition(),
                    Some(e.reason()),
                );
            }
        }
    }
    let browser = req.header(ACCEPT)?.is_some_and(|a| a.contains("text/html"));
    if browser {
        let mut resp = status(StatusCode::SEE_OTHER);
        resp.headers_mut().insert(
            LOCATION,
            header_value(
                server
                    .config
                    .base_path
                    .href(&req.path, ResourceKind::Collection)
                    .as_str(),
            ),
        );
        return Ok(resp);
    }
    w.finish();
    Ok(multistatus(DavBody::full(w.take())))
}

/// Whether a browser sent this POST for a page of another site. A form needs no preflight,
/// and the browser adds the login it saved for this server: any site could store files as
/// whoever visits it (cross-site request forgery). `Sec-Fetch-Site` (which pages cannot
/// set) says where the request comes from; browsers without it are judged by `Origin`
/// against the `Host`. Requests with neither come from other programs, and pass. An origin
/// allowed by name for CORS (which may use the saved login) passes too.
fn from_another_site(server: &DavServer, req: &DavRequest) -> bool {
    let headers = &req.parts.headers;
    if server
        .config
        .cors
        .allowed(headers)
        .is_some_and(|a| a.credentials)
    {
        return false;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return false;
    };
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.parts.uri.authority().map(http::uri::Authority::as_str));
    let Some((scheme, authority)) = origin.to_str().ok().and_then(|o| o.split_once("://")) else {
        return true; // `null`, or nothing a browser sends for a page
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    let bare = |a: &str| {
        a.strip_suffix(default_port)
            .unwrap_or(a)
            .to_ascii_lowercase()
    };
    host.is_none_or(|h| bare(h) != bare(authority))
}

/// The member a part names: browsers send a base name (old ones a whole client path), with
/// `"`, CR and LF escaped as the HTML form encoding does.
fn member_name(raw: &str) -> Option<String> {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name = name
        .replace("%22", "\"")
        .replace("%0D", "\r")
        .replace("%0A", "\n");
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

async fn store_part(
    server: &DavServer,
    req: &DavRequest,
    raw_name: &str,
    field: Arc<Mutex<multer::Field<'static>>>,
) -> Result<(ResourcePath, WriteOutcome), (Option<ResourcePath>, DavError)> {
    let path = member_name(raw_name)
        .and_then(|n| req.path.join(&n).ok())
        .ok_or_else(|| {
            (
                None,
                DavError::bad_request(format!("`{raw_name}` is not a usable file name")),
            )
        })?;
    let fail = |e: DavError| (Some(path.clone()), e);
    if req
        .principal
        .rules()
        .is_some_and(|rules| rules.access(&path) < crate::auth::Access::Write)
    {
        return Err(fail(DavError::forbidden(
            "your account may only read this file",
        )));
    }
    check_write(server, req, &path, None, Change::Write)
        .await
        .map_err(fail)?;
    let stream: ByteStream = Box::pin(futures_util::stream::poll_fn(move |cx| {
        let mut f = field.lock().unwrap_or_else(|p| p.into_inner());
        f.poll_next_unpin(cx)
            .map(|o| o.map(|r| r.map_err(std::io::Error::other)))
    }));
    let storage_error = |e| {
        fail(match e {
            StorageError::IsCollection => DavError::conflict("a collection has this name"),
            StorageError::ParentMissing | StorageError::NotACollection => {
                DavError::conflict("the collection is gone")
            }
            e => DavError::from_storage(e),
        })
    };
    let max = server.config.max_upload_bytes;
    let (stream, over) = limit_stream(stream, max);
    let pending = match server.storage().prepare_write(&path, stream).await {
        Ok(p) => p,
        Err(_) if over.load(Ordering::Relaxed) => {
            return Err(fail(upload_too_large(max.unwrap_or_default())));
        }
        Err(e) => return Err(storage_error(e)),
    };
    // As for PUT: checked again right before the part becomes visible.
    let _gate = server.locks.write_gate().await;
    check_write(server, req, &path, None, Change::Write)
        .await
        .map_err(fail)?;
    let (outcome, _) = pending.commit().await.map_err(storage_error)?;
    if outcome == WriteOutcome::Created {
        forget_stale(server, &path).await.map_err(fail)?;
    }
    Ok((path, outcome))
}

async fn drain(mut field: multer::Field<'static>) {
    while let Some(Ok(_)) = field.next().await {}
}

/// Reads what storage left of a part, so the next part can be found.
async fn drain_shared(field: &Arc<Mutex<multer::Field<'static>>>) {
    loop {
        let next = futures_util::future::poll_fn(|cx| {
            let mut f = field.lock().unwrap_or_else(|p| p.into_inner());
            f.poll_next_unpin(cx)
        })
        .await;
        if !matches!(next, Some(Ok(_))) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::member_name;

    #[test]
    fn member_names() {
        assert_eq!(member_name("a.txt").as_deref(), Some("a.txt"));
        assert_eq!(
            member_name("C:\\Users\\ann\\b.txt").as_deref(),
            Some("b.txt")
        );
        assert_eq!(member_name("dir/c.txt").as_deref(), Some("c.txt"));
        assert_eq!(member_name("say %22hi%22").as_deref(), Some("say \"hi\""));
        for bad in ["", "..", ".", "dir/"] {
            assert_eq!(member_name(bad), None, "{bad}");
        }
    }
}
