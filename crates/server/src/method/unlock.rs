//! UNLOCK (RFC 4918 §9.11): remove the lock named by `Lock-Token` (400 without one), which
//! must apply to the Request-URI (else 409 `lock-token-matches-request-uri`).

use davit_proto::{Condition, parse_lock_token};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::lock::covers;
use crate::request::{DavRequest, LOCK_TOKEN};

use super::status;

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    let Some(value) = req.header(LOCK_TOKEN)? else {
        return Err(DavError::bad_request(
            "UNLOCK needs a Lock-Token header naming a lock on this resource",
        ));
    };
    let token = parse_lock_token(&value)?;
    let lock = server.locks.get(&token).await?;
    match lock {
        Some(l) if covers(&l, &req.path) && !req.may_use(&l) => {
            Err(DavError::forbidden("the lock belongs to another user"))
        }
        Some(l) if covers(&l, &req.path) => {
            server.locks.remove(&token).await?;
            tracing::debug!(path = ?req.path, token = %token, "lock released");
            Ok(status(StatusCode::NO_CONTENT))
        }
        _ => Err(not_this_lock(
            "the lock token does not name a lock on this resource",
        )),
    }
}

fn not_this_lock(reason: &'static str) -> DavError {
    DavError::conflict(reason).with_condition(Condition::LockTokenMatchesRequestUri)
}
