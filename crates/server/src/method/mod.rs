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
    match req.method().as_str() {
        "OPTIONS" => options::handle(server, &req).await,
        "GET" | "HEAD" => get::handle(server, &req).await,
        "PUT" => put::handle(server, &req, body).await,
        "DELETE" => delete::handle(server, &req).await,
        "MKCOL" => mkcol::handle(server, &req, body).await,
        "COPY" => copy::handle(server, &req).await,
        "MOVE" => r#move::handle(server, &req).await,
        "PROPFIND" => propfind::handle(server, &req, body).await,
        "PROPPATCH" => proppatch::handle(server, &req, body).await,
        "LOCK" => lock::handle(server, &req, body).await,
        "UNLOCK" => unlock::handle(server, &req).await,
        "POST" => post::handle(server, &req, body).await,
        "PATCH" | "TRACE" | "CONNECT" => Err(DavError::method_not_allowed(
            format!("{} is not supported here", req.method()),
            ALLOW,
        )),
        other => Err(DavError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("method {other} is not implemented"),
        )
        .with_header(http::header::ALLOW, http::HeaderValue::from_static(ALLOW))),
    }
}

/// An empty response with a status.
pub(crate) fn status(status: StatusCode) -> Response<DavBody> {
    let mut resp = Response::new(DavBody::Empty);
    *resp.status_mut() = status;
    resp
}
