//! One module per method; [`dispatch`] picks it.

use std::net::IpAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::DavServer;
use crate::auth::{Principal, authorize};
use crate::body::DavBody;
use crate::error::DavError;
use crate::request::{Body, DavRequest};

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

/// Every method Davit implements, for `Allow`.
pub(crate) const ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH";

/// Answers a request from `client`; `user` is set to who sent it once that is known.
pub(crate) async fn dispatch(
    server: &Arc<DavServer>,
    req: Request<Incoming>,
    client: IpAddr,
    user: &mut Option<Arc<str>>,
) -> Result<Response<DavBody>, DavError> {
    let (parts, body) = req.into_parts();
    let body = Body::new(body);
    let principal = match &server.config.auth {
        Some(auth) => match auth.authenticate(&parts.headers, client).await {
            Ok(p) => p,
            Err(e) => {
                body.discard().await;
                return Err(e);
            }
        },
        None => Principal::unrestricted(),
    };
    user.clone_from(&principal.user);
    if parts.method == http::Method::OPTIONS && parts.uri.path() == "*" {
        return Ok(options::server_wide());
    }
    if changes_state(&parts.method) {
        // A client that goes away drops this future; the change runs to its end anyway,
        // so no rename is left without its property move, no lock without its record.
        let server = Arc::clone(server);
        let task = tokio::spawn(async move { respond(&server, parts, principal, body).await });
        return task.await.unwrap_or_else(|e| {
            Err(DavError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request handler failed",
            )
            .with_source(e))
        });
    }
    respond(server, parts, principal, body).await
}

fn changes_state(method: &http::Method) -> bool {
    !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS" | "PROPFIND")
}

/// Routes the request; what the handler left of the body is read and dropped on an error.
async fn respond(
    server: &DavServer,
    parts: http::request::Parts,
    principal: Principal,
    mut body: Body,
) -> Result<Response<DavBody>, DavError> {
    let result = route(server, parts, principal, &mut body).await;
    if result.is_err() {
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
    let mut req = DavRequest::new(parts)?;
    req.principal = principal;
    authorize(server.config.auth.as_deref(), &req)?;
    crate::precondition::check_if(server, &req).await?;
    // Each handler's future is boxed: unboxed, this future would be as large as the
    // largest of them (kilobytes), copied whole when a request task is spawned.
    let handler: Handler<'_> = match req.method().as_str() {
        "OPTIONS" => Box::pin(options::handle(server, &req)),
        "GET" | "HEAD" => Box::pin(get::handle(server, &req)),
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
            return Err(DavError::method_not_allowed(
                format!("{} is not supported here", req.method()),
                ALLOW,
            ));
        }
        other => {
            return Err(DavError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("method {other} is not implemented"),
            )
            .with_header(http::header::ALLOW, http::HeaderValue::from_static(ALLOW)));
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
