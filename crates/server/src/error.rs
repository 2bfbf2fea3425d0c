//! `DavError`: a status, an optional RFC 4918 §16 condition, and the reason, turned into a
//! response in one place.

use std::borrow::Cow;

use bytes::Bytes;
use davit_proto::{Condition, ParseError};
use davit_store::StorageError;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::body::DavBody;

/// An error answer: its status, the `DAV:error` condition if one applies, a reason for the
/// client and the log, extra headers (e.g. `Allow`), and the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {reason}")]
pub struct DavError {
    status: StatusCode,
    condition: Option<Condition>,
    reason: Cow<'static, str>,
    headers: Vec<(HeaderName, HeaderValue)>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DavError {
    /// An error with a status and a reason.
    pub fn new(status: StatusCode, reason: impl Into<Cow<'static, str>>) -> Self {
        DavError {
            status,
            condition: None,
            reason: reason.into(),
            headers: Vec::new(),
            source: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    /// 403 Forbidden.
    pub fn forbidden(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, reason)
    }

    /// 404 Not Found.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no resource at this URL")
    }

    /// 409 Conflict.
    pub fn conflict(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, reason)
    }

    /// 412 Precondition Failed.
    pub fn precondition_failed(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, reason)
    }

    /// 405 Method Not Allowed, with the `Allow` header.
    pub fn method_not_allowed(reason: impl Into<Cow<'static, str>>, allow: &'static str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, reason)
            .with_header(http::header::ALLOW, HeaderValue::from_static(allow))
    }

    /// Adds a condition for a `DAV:error` body.
    pub fn with_condition(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Keeps the underlying cause for the log.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The condition, if any.
    pub fn condition(&self) -> Option<&Condition> {
        self.condition.as_ref()
    }

    /// The reason given to the client.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The error as a response: a `DAV:error` XML body when a condition applies, the reason
    /// as text otherwise.
    pub fn into_response(self) -> Response<DavBody> {
        if self.status.is_server_error() {
            let mut chain = String::new();
            let mut cause: Option<&(dyn std::error::Error + 'static)> =
                self.source.as_deref().map(|e| e as _);
            while let Some(c) = cause {
                chain.push_str(": ");
                chain.push_str(&c.to_string());
                cause = c.source();
            }
            tracing::error!(status = %self.status, "{}{chain}", self.reason);
        } else {
            tracing::debug!(status = %self.status, reason = %self.reason, "request refused");
        }
        let (body, content_type) = match &self.condition {
            Some(c) => (c.to_error_body(), "application/xml; charset=utf-8"),
            None => (format!("{}\n", self.reason), "text/plain; charset=utf-8"),
        };
        let mut resp = Response::new(DavBody::full(Bytes::from(body)));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        resp
    }

    /// Maps a storage failure with the default table; methods override where RFC 4918 gives
    /// a failure a method-specific status.
    pub fn from_storage(err: StorageError) -> Self {
        let (status, reason): (StatusCode, &'static str) = match &err {
            StorageError::NotFound => (StatusCode::NOT_FOUND, "no resource at this URL"),
            StorageError::AlreadyExists => (
                StatusCode::METHOD_NOT_ALLOWED,
                "a resource already exists here",
            ),
            StorageError::ParentMissing => {
                (StatusCode::CONFLICT, "the parent collection does not exist")
            }
            StorageError::NotACollection => {
                (StatusCode::CONFLICT, "a path segment is not a collection")
            }
            StorageError::IsCollection => {
                (StatusCode::METHOD_NOT_ALLOWED, "the target is a collection")
            }
            StorageError::NotEmpty => (StatusCode::CONFLICT, "the collection is not empty"),
            StorageError::PermissionDenied => {
                (StatusCode::FORBIDDEN, "the storage refused the operation")
            }
            StorageError::NameTooLong => (
                StatusCode::BAD_REQUEST,
                "a name in the path is longer than the storage can hold",
            ),
            StorageError::InsufficientStorage => {
                (StatusCode::INSUFFICIENT_STORAGE, "not enough storage space")
            }
            StorageError::Unsupported => {
                (StatusCode::NOT_IMPLEMENTED, "not supported by this storage")
            }
            StorageError::BodyAborted(_) => (
                StatusCode::BAD_REQUEST,
                "the request body ended before it was complete",
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "storage failure"),
        };
        Self::new(status, reason).with_source(err)
    }
}

impl From<ParseError> for DavError {
    fn from(err: ParseError) -> Self {
        let reason = err.to_string();
        match err {
            // RFC 4918 §16: a body with (external) entities gets 403 and this condition.
            ParseError::Dtd => {
                Self::forbidden(reason).with_condition(Condition::NoExternalEntities)
            }
            _ => Self::bad_request(reason),
        }
    }
}
