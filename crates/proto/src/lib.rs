//! The WebDAV vocabulary shared by Davit's server and client: paths, typed headers, request
//! bodies and the multistatus writer. No I/O happens here.
//!
//! # Layout
//! - [`path`]: [`ResourcePath`] (decoded) and [`Href`] (encoded).
//! - [`h1`]: HTTP/1.1 request heads and the chunked coding (RFC 9112).
//! - [`header`]: `Depth`, `Overwrite`, `Destination`, `Range`, entity tags.
//! - [`prop`]: property names, values and PROPPATCH instructions.
//! - [`xml`]: the bounded body parser and XML escaping.
//! - [`request`]: `propfind` and `propertyupdate` bodies.
//! - [`if_header`]: the `If` header grammar.
//! - [`lock`]: `lockinfo`, `Timeout`, `Lock-Token` and `activelock`.
//! - [`multistatus`]: the streaming `multistatus` writer and `DAV:error` conditions.
//!
//! # Example
//! ```
//! use davit_proto::{PropFind, ResourcePath, XmlLimits};
//! # fn main() -> Result<(), davit_proto::ParseError> {
//! let path = ResourcePath::parse("/docs/a%20b.txt")?;
//! assert_eq!(path.name(), "a b.txt");
//! let body = br#"<propfind xmlns="DAV:"><propname/></propfind>"#;
//! assert_eq!(PropFind::from_xml(body, XmlLimits::default())?, PropFind::PropName);
//! # Ok(())
//! # }
//! ```
//!
//! RFC 4918 sections covered: §8.1 (XML handling), §9.1 and §14.20 (propfind), §9.2 and
//! §14.19 (propertyupdate), §10.2 (Depth), §10.3 (Destination), §10.6 (Overwrite), §13
//! (multistatus), §16 (conditions); RFC 9110 §13-14 (entity tags, ranges).

#![forbid(unsafe_code)]

pub mod digest;
pub mod error;
pub mod h1;
pub mod header;
pub mod if_header;
pub mod lock;
pub mod multistatus;
pub mod path;
pub mod prop;
pub mod request;
pub mod time;
pub mod xml;

pub use digest::{DigestChallenge, DigestCredentials};
pub use error::ParseError;
pub use header::{
    ByteRange, ByteRangeSpec, Depth, Destination, ETag, ETagList, Overwrite, RangeRequest,
    parse_range, resolve_range,
};
pub use if_header::{IfCondition, IfHeader, IfList, IfTest};
pub use lock::{ActiveLock, LockInfo, LockScope, Timeout, lock_response_body, parse_lock_token};
pub use multistatus::{Condition, MultistatusWriter, reason_phrase};
pub use path::{BasePath, Href, ResourceKind, ResourcePath, composed, decomposed, encode_path};
pub use prop::{DAV_NS, PropName, PropOp, PropValue};
pub use request::{PropFind, PropertyUpdate};
pub use time::{rfc3339, write_http_date, write_rfc3339};
pub use xml::{Element, XmlLimits, write_decimal};
