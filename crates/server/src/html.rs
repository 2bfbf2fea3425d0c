//! The HTML listing a browser gets for GET on a collection.

use davit_proto::{ResourceKind, xml::escape_text_into};
use http::Response;
use http::header::{CONTENT_TYPE, HeaderValue};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::request::DavRequest;

pub(crate) async fn listing(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    let mut entries = server
        .storage()
        .list(&req.path)
        .await
        .map_err(DavError::from_storage)?;
    let page = |body| {
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        resp
    };
    if req.is_head() {
        // Listed all the same: HEAD fails where GET would.
        return Ok(page(DavBody::Empty));
    }
    entries.retain(|e| !server.config.hidden.hides_member(e));
    entries.sort_by(|a, b| {
        let dir = |e: &davit_store::Entry| !e.is_collection();
        dir(a).cmp(&dir(b)).then_with(|| a.name.cmp(&b.name))
    });
    let base = &server.config.base_path;
    // The path as the browser shows it, base path included.
    let shown = match (base.path().is_root(), req.path.is_root()) {
        (true, _) => req.path.to_string(),
        (false, true) => format!("{}/", base.path()),
        (false, false) => format!("{}{}", base.path(), req.path),
    };
    let mut title = String::new();
    escape_text_into(&shown, &mut title);
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif}}td{{padding:0 1em}}</style></head>\
         <body><h1>{title}</h1><table>\n"
    );
    if let Some(parent) = req.path.parent() {
        html.push_str(&format!(
            "<tr><td><a href=\"{}\">../</a></td></tr>\n",
            base.href(&parent, ResourceKind::Collection)
        ));
    }
    for e in &entries {
        let Ok(path) = req.path.join(&e.name) else {
            continue;
        };
        let (kind, size, modified) = match &e.metadata {
            Ok(m) => (
                m.kind,
                if m.kind.is_collection() {
                    String::new()
                } else {
                    m.len.to_string()
                },
                {
                    // Clamped to 1970-9999: files dated outside it exist (touch -d 1960).
                    let mut date = String::with_capacity(29);
                    davit_proto::write_http_date(m.modified, &mut date);
                    date
                },
            ),
            Err(_) => (ResourceKind::File, String::new(), String::new()),
        };
        let mut name = String::new();
        escape_text_into(&e.name, &mut name);
        if kind.is_collection() {
            name.push('/');
        }
        html.push_str(&format!(
            "<tr><td><a href=\"{}\">{name}</a></td><td>{size}</td><td>{modified}</td></tr>\n",
            base.href(&path, kind)
        ));
    }
    html.push_str("</table>\n");
    if !server.config.read_only {
        html.push_str(
            "<form method=\"post\" enctype=\"multipart/form-data\">\
             <input type=\"file\" name=\"file\" multiple> <button type=\"submit\">Upload</button></form>\n",
        );
    }
    html.push_str("</body></html>\n");
    Ok(page(DavBody::full(html)))
}
