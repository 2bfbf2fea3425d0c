//! One module per method; [`dispatch`] picks it.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::Poll;

use davit_proto::ResourceKind;
use http::{Request, Response, StatusCode};

use crate::DavServer;
use crate::auth::{Principal, authorize, authorize_creation};
use crate::body::DavBody;
use crate::error::DavError;
use crate::request::{Body, DavRequest, RequestBody};

mod copy;
mod delete;
mod get;
mod lock;
mod mkcol;
mod r#move;
mod options;
mod post;
mod propfind;
mod proppatch;
mod put;
mod transfer;
mod unlock;

/// Every method a handler answers.
pub(crate) const IMPLEMENTED: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK, POST";
/// The methods a read-only server answers.
pub(crate) const READ_ONLY_ALLOW: &str = "OPTIONS, GET, HEAD, PROPFIND";

/// `Allow` for a resource of `kind` (`None`: nothing there), the same in OPTIONS and in
/// every 405 (RFC 9110 §15.5.6: the methods the target supports).
pub(crate) fn allow_for(kind: Option<ResourceKind>, read_only: bool) -> &'static str {
    match (kind, read_only) {
        (None, true) => "OPTIONS",
        (Some(_), true) => READ_ONLY_ALLOW,
        (None, false) => "OPTIONS, PUT, MKCOL, LOCK",
        (Some(k), false) if k.is_collection() => {
            "OPTIONS, GET, HEAD, POST, DELETE, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK"
        }
        (Some(_), false) => {
            "OPTIONS, GET, HEAD, PUT, DELETE, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK"
        }
    }
}

/// Answers a request from `client`; `user` is set to who sent it once that is known.
pub(crate) async fn dispatch(
    server: &Arc<DavServer>,
    req: Request<RequestBody>,
    client: IpAddr,
    user: &mut Option<Arc<str>>,
) -> Result<Response<DavBody>, DavError> {
    let (parts, body) = req.into_parts();
    let body = Body::new(body);
    let mut principal = match &server.config.auth {
        Some(auth) => match auth
            .authenticate(&parts.method, &parts.uri, &parts.headers, client)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                body.discard().await;
                return Err(e);
            }
        },
        None => Principal::unrestricted(),
    };
    user.clone_from(&principal.user);
    let Some(next_nonce) = principal.next_nonce.take() else {
        return route_change(server, parts, principal, body).await;
    };
    // A Digest nonce past half its life: the client gets the next one with this answer.
    let name = http::HeaderName::from_static("authentication-info");
    match route_change(server, parts, principal, body).await {
        Ok(mut resp) => {
            resp.headers_mut().insert(name, next_nonce);
            Ok(resp)
        }
        Err(e) => Err(e.with_header(name, next_nonce)),
    }
}

/// The rest of [`dispatch`], once the sender is known.
async fn route_change(
    server: &Arc<DavServer>,
    parts: http::request::Parts,
    principal: Principal,
    body: Body,
) -> Result<Response<DavBody>, DavError> {
    if parts.method == http::Method::OPTIONS && parts.uri.path() == "*" {
        return Ok(options::server_wide(server.config.read_only));
    }
    if changes_state(&parts.method) {
        // Taken before the change starts: a client gone while it waits leaves nothing
        // half done.
        let Ok(slot) = Arc::clone(&server.change_slots).acquire_owned().await else {
            return Err(handler_failed());
        };
        let tracker = server.changes.clone();
        let server = Arc::clone(server);
        let change: Handler<'static> =
            Box::pin(async move { respond(&server, parts, principal, body).await });
        return run_to_end(change, slot, &tracker).await;
    }
    respond(server, parts, principal, body).await
}

/// Runs a change so that it ends even if the client goes away (which drops this future):
/// no rename is left without its property move, no lock without its record.
///
/// Most changes need no waiting (a lock, a property, a small file with sync left to the
/// OS) and end at their first poll, right here. One that has to wait moves, boxed where
/// it is, into a task of its own; spawning every change cost a task and a wake-up each.
async fn run_to_end(
    mut change: Handler<'static>,
    slot: tokio::sync::OwnedSemaphorePermit,
    tracker: &tokio_util::task::TaskTracker,
) -> Result<Response<DavBody>, DavError> {
    let first = std::future::poll_fn(|cx| {
        Poll::Ready(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || change.as_mut().poll(cx),
        )))
    })
    .await;
    match first {
        Ok(Poll::Ready(result)) => result,
        Ok(Poll::Pending) => tracker
            .spawn(async move {
                let _slot = slot;
                change.await
            })
            .await
            .unwrap_or_else(|e| Err(handler_failed().with_source(e))),
        // The future is spent; a panic is what a spawned task would have reported, too.
        Err(_) => Err(handler_failed()),
    }
}

fn handler_failed() -> DavError {
    DavError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request handler failed",
    )
}

fn changes_state(method: &http::Method) -> bool {
    !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS" | "PROPFIND")
}

/// The methods a read-only server refuses: every one it implements that changes state.
fn writes(method: &http::Method) -> bool {
    matches!(
        method.as_str(),
        "PUT" | "DELETE" | "MKCOL" | "COPY" | "MOVE" | "PROPPATCH" | "LOCK" | "UNLOCK" | "POST"
    )
}

/// Routes the request; what the handler left of the body is read and dropped on an error,
/// but for a body refused for its size: that answer goes at once, and the connection
/// closes after it instead of reading what was refused.
async fn respond(
    server: &DavServer,
    parts: http::request::Parts,
    principal: Principal,
    mut body: Body,
) -> Result<Response<DavBody>, DavError> {
    let result = route(server, parts, principal, &mut body).await;
    if let Err(e) = &result
        && e.status() != StatusCode::PAYLOAD_TOO_LARGE
    {
        body.discard().await;
    }
    result
}

async fn route(
    server: &DavServer,
    parts: http::request::Parts,
    principal: Principal,
    body: &mut Body,
) -> Result<Response<DavBody>, DavError> {
    let mut req = DavRequest::new(parts, &server.config.base_path)?;
    if server.config.read_only && writes(req.method()) {
        return Err(DavError::forbidden(format!(
            "{} refused: this server is read-only",
            req.method()
        )));
    }
    req.principal = principal;
    // Before the access rules, which judge the resources the request will act on; after
    // the sender is known, whose rules say where other spellings may be looked for.
    req.match_spelling(server.storage(), &server.config.base_path)
        .await;
    authorize(
        server.config.auth.as_deref(),
        &req,
        &server.config.base_path,
    )?;
    if matches!(req.method().as_str(), "PUT" | "LOCK") {
        authorize_creation(server.config.auth.as_deref(), &req, server.storage()).await?;
    }
    crate::precondition::check_if(server, &req).await?;
    // Each handler's future is boxed: unboxed, this future would be as large as the
    // largest of them (kilobytes), copied whole when a request task is spawned. GET's is
    // small and the commonest request, so it spares the allocation.
    if matches!(req.method().as_str(), "GET" | "HEAD") {
        return get::handle(server, &req).await;
    }
    let handler: Handler<'_> = match req.method().as_str() {
        "OPTIONS" => Box::pin(options::handle(server, &req)),
        "PUT" => Box::pin(put::handle(server, &req, body)),
        "DELETE" => Box::pin(delete::handle(server, &req)),
        "MKCOL" => Box::pin(mkcol::handle(server, &req, body)),
        "COPY" => Box::pin(copy::handle(server, &req)),
        "MOVE" => Box::pin(r#move::handle(server, &req)),
        "PROPFIND" => Box::pin(propfind::handle(server, &req, body)),
        "PROPPATCH" => Box::pin(proppatch::handle(server, &req, body)),
        "LOCK" => Box::pin(lock::handle(server, &req, body)),
        "UNLOCK" => Box::pin(unlock::handle(server, &req)),
        "POST" => Box::pin(post::handle(server, &req, body)),
        "PATCH" | "TRACE" | "CONNECT" => {
            let kind = server.storage().metadata(&req.path).await.ok();
            return Err(DavError::method_not_allowed(
                format!("{} is not supported here", req.method()),
                allow_for(kind.map(|m| m.kind), server.config.read_only),
            ));
        }
        other => {
            let implemented = if server.config.read_only {
                READ_ONLY_ALLOW
            } else {
                IMPLEMENTED
            };
            return Err(DavError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("method {other} is not implemented"),
            )
            .with_header(
                http::header::ALLOW,
                http::HeaderValue::from_static(implemented),
            ));
        }
    };
    handler.await
}

type Handler<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<DavBody>, DavError>> + Send + 'a>,
>;

/// An empty response with a status.
pub(crate) fn status(status: StatusCode) -> Response<DavBody> {
    let mut resp = Response::new(DavBody::Empty);
    *resp.status_mut() = status;
    resp
}
