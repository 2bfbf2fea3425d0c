//! The one error type of davit-proto.

/// Why a path, header or XML body could not be understood.
///
/// Every variant is the client's fault: the server answers it with 400 (or 403/413 where the
/// variant says so), never with a 5xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A request path or Destination path that cannot name a resource under the root.
    #[error("invalid path: {0}")]
    Path(&'static str),
    /// A header whose value does not follow its grammar.
    #[error("invalid {header} header: {reason}")]
    Header {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A body that is not well-formed XML.
    #[error("malformed XML at byte {offset}: {reason}")]
    Xml {
        /// Byte offset in the body where the parser stopped.
        offset: u64,
        /// What the parser found.
        reason: String,
    },
    /// A body with a document type declaration: Davit never processes DTDs, so no entity
    /// can be declared, expanded or fetched (RFC 4918 §20.6).
    #[error("XML body refused: DTDs are not accepted")]
    Dtd,
    /// Well-formed XML that nests or grows past the configured bounds.
    #[error("XML body refused: {0}")]
    Refused(&'static str),
    /// Well-formed XML that is not the element the method expects.
    #[error("unexpected XML body: {0}")]
    Body(String),
}

impl ParseError {
    pub(crate) fn header(header: &'static str, reason: &'static str) -> Self {
        Self::Header { header, reason }
    }
}
