//! `ClientError`: what went wrong, with the status, the `DAV:error` condition and, for a
//! 207 in which everything failed, the whole multistatus.

use std::fmt;

use crate::multistatus::{Failure, Multistatus};

/// An error from a WebDAV call. Its message text is not stable; match on the accessors.
#[derive(Debug)]
pub struct ClientError {
    kind: Kind,
    status: Option<u16>,
    condition: Option<String>,
    message: String,
    multistatus: Option<Box<Multistatus>>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The server answered with an error status.
    Status,
    /// The server answered 207 and every entry in it failed.
    AllFailed,
    /// The connection or the transfer failed.
    Transport,
    /// The server's answer could not be understood.
    Protocol,
    /// A local file could not be read or written.
    Io,
    /// The URL or an argument is unusable.
    Usage,
}

impl ClientError {
    pub(crate) fn status(status: u16, condition: Option<String>, message: String) -> Self {
        ClientError {
            kind: Kind::Status,
            status: Some(status),
            condition,
            message,
            multistatus: None,
            source: None,
        }
    }

    pub(crate) fn all_failed(ms: Multistatus) -> Self {
        let failures = ms.failures();
        let status = failures.first().map(|f| f.status);
        let condition = failures.iter().find_map(|f| f.condition.clone());
        ClientError {
            kind: Kind::AllFailed,
            status,
            condition,
            message: format!("{} of {} failed", failures.len(), failures.len()),
            multistatus: Some(Box::new(ms)),
            source: None,
        }
    }

    pub(crate) fn transport(err: reqwest::Error) -> Self {
        ClientError {
            kind: Kind::Transport,
            status: None,
            condition: None,
            message: "the request could not be completed".to_owned(),
            multistatus: None,
            source: Some(Box::new(err)),
        }
    }

    pub(crate) fn protocol(message: String) -> Self {
        ClientError {
            kind: Kind::Protocol,
            status: None,
            condition: None,
            message,
            multistatus: None,
            source: None,
        }
    }

    pub(crate) fn io(context: String, err: std::io::Error) -> Self {
        ClientError {
            kind: Kind::Io,
            status: None,
            condition: None,
            message: context,
            multistatus: None,
            source: Some(Box::new(err)),
        }
    }

    pub(crate) fn usage(message: String) -> Self {
        ClientError {
            kind: Kind::Usage,
            status: None,
            condition: None,
            message,
            multistatus: None,
            source: None,
        }
    }

    /// The HTTP status the server answered with (for a 207 in which everything failed, the
    /// status of the first failure).
    pub fn status_code(&self) -> Option<u16> {
        self.status
    }

    /// The `DAV:error` condition the server gave, e.g. `lock-token-submitted`.
    pub fn condition(&self) -> Option<&str> {
        self.condition.as_deref()
    }

    /// 404.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// 423.
    pub fn is_locked(&self) -> bool {
        self.status == Some(423)
    }

    /// True when the server could not be reached or the transfer broke off.
    pub fn is_transport(&self) -> bool {
        self.kind == Kind::Transport
    }

    /// For a 207 in which every entry failed: the multistatus.
    pub fn multistatus(&self) -> Option<&Multistatus> {
        self.multistatus.as_deref()
    }

    /// The per-resource failures: those of the multistatus, or this error as one failure
    /// of `path` when the server answered with a plain status.
    pub fn failures(&self, path: &str) -> Vec<Failure> {
        match (&self.multistatus, self.status) {
            (Some(ms), _) => ms.failures(),
            (None, Some(status)) => vec![Failure {
                path: path.to_owned(),
                property: None,
                status,
                condition: self.condition.clone(),
                description: Some(self.message.clone()),
            }],
            (None, None) => Vec::new(),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, &self.condition) {
            (Some(s), Some(c)) if self.kind == Kind::Status => {
                write!(f, "{s} ({c}): {}", self.message)
            }
            (Some(s), None) if self.kind == Kind::Status => write!(f, "{s}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
