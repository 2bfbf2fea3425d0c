//! Typed WebDAV and HTTP request headers: `Depth`, `Overwrite`, `Destination`, `Range`,
//! entity tags (RFC 4918 §10, RFC 9110 §8.8.3, §13, §14).

use std::fmt;

use crate::{ParseError, ResourcePath};

/// The `Depth` header (RFC 4918 §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The resource only.
    Zero,
    /// The resource and its immediate members.
    One,
    /// The resource and everything below it.
    Infinity,
}

impl Depth {
    /// Parses a header value; absent means `default` (which the RFC sets per method).
    ///
    /// # Errors
    /// [`ParseError::Header`] for anything but `0`, `1` or `infinity`.
    pub fn parse(value: Option<&str>, default: Depth) -> Result<Depth, ParseError> {
        match value.map(str::trim) {
            None => Ok(default),
            Some("0") => Ok(Depth::Zero),
            Some("1") => Ok(Depth::One),
            Some(v) if v.eq_ignore_ascii_case("infinity") => Ok(Depth::Infinity),
            Some(_) => Err(ParseError::header("Depth", "must be 0, 1 or infinity")),
        }
    }
}

impl fmt::Display for Depth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Depth::Zero => "0",
            Depth::One => "1",
            Depth::Infinity => "infinity",
        })
    }
}

/// The `Overwrite` header of COPY and MOVE (RFC 4918 §10.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// `T` (the default): an existing destination is replaced.
    Allow,
    /// `F`: an existing destination makes the request fail with 412.
    Forbid,
}

impl Overwrite {
    /// Parses a header value; absent means `T`.
    ///
    /// # Errors
    /// [`ParseError::Header`] for anything but `T` or `F`.
    pub fn parse(value: Option<&str>) -> Result<Overwrite, ParseError> {
        match value.map(str::trim) {
            None => Ok(Overwrite::Allow),
            Some("T" | "t") => Ok(Overwrite::Allow),
            Some("F" | "f") => Ok(Overwrite::Forbid),
            Some(_) => Err(ParseError::header("Overwrite", "must be T or F")),
        }
    }
}

/// The `Destination` header of COPY and MOVE (RFC 4918 §10.3): an absolute URI or path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `host[:port]` when the header held an absolute URI; checked against the request's host.
    pub authority: Option<String>,
    /// The decoded path below the root.
    pub path: ResourcePath,
    /// Whether the encoded path ended in `/`.
    pub trailing_slash: bool,
}

impl Destination {
    /// Parses a header value.
    ///
    /// # Errors
    /// [`ParseError::Header`] if it is neither `http(s)://authority/path` nor `/path`;
    /// [`ParseError::Path`] if the path cannot name a resource under the root.
    pub fn parse(value: &str) -> Result<Destination, ParseError> {
        let value = value.trim();
        let (authority, rest) = if let Some(after) = strip_scheme(value) {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            let authority = &after[..end];
            if authority.is_empty() {
                return Err(ParseError::header("Destination", "empty host"));
            }
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            (Some(authority.to_ascii_lowercase()), &after[end..])
        } else if value.starts_with('/') {
            (None, value)
        } else {
            return Err(ParseError::header(
                "Destination",
                "must be an absolute URI or an absolute path",
            ));
        };
        let path = rest.split(['?', '#']).next().unwrap_or("");
        let path = if path.is_empty() { "/" } else { path };
        Ok(Destination {
            authority,
            trailing_slash: path.ends_with('/'),
            path: ResourcePath::parse(path)?,
        })
    }
}

fn strip_scheme(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once("://")?;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")).then_some(rest)
}

/// One range of a `Range: bytes=` header (RFC 9110 §14.1.2), before it meets a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRangeSpec {
    /// `first-last`, both inclusive.
    FromTo(u64, u64),
    /// `first-`: from `first` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// A satisfiable byte range resolved against a length: `start..end`, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if the range holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// What a `Range` header asks of a representation of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Send the whole representation with 200 (no header, several ranges, or a range the
    /// server chooses to ignore).
    Full,
    /// Send this one range with 206.
    Partial(ByteRange),
    /// No range can be satisfied: 416.
    Unsatisfiable,
}

/// Parses a `Range` header value into its range specs.
///
/// # Errors
/// [`ParseError::Header`] if the value is not `bytes=` followed by valid specs. RFC 9110 says
/// a server ignores a Range it cannot parse, so callers treat this as "send everything".
pub fn parse_range(value: &str) -> Result<Vec<ByteRangeSpec>, ParseError> {
    const BAD: ParseError = ParseError::Header {
        header: "Range",
        reason: "not a bytes range set",
    };
    let value = value.trim();
    let (unit, set) = value.split_once('=').ok_or(BAD)?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Err(BAD);
    }
    let mut specs = Vec::new();
    for part in set.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if specs.len() >= 64 {
            return Err(ParseError::header("Range", "too many ranges"));
        }
        let (first, last) = part.split_once('-').ok_or(BAD)?;
        let (first, last) = (first.trim(), last.trim());
        let spec = match (first.is_empty(), last.is_empty()) {
            (true, true) => return Err(BAD),
            (true, false) => ByteRangeSpec::Suffix(parse_u64(last).ok_or(BAD)?),
            (false, true) => ByteRangeSpec::From(parse_u64(first).ok_or(BAD)?),
            (false, false) => {
                let (a, b) = (parse_u64(first).ok_or(BAD)?, parse_u64(last).ok_or(BAD)?);
                if b < a {
                    return Err(BAD);
                }
                ByteRangeSpec::FromTo(a, b)
            }
        };
        specs.push(spec);
    }
    if specs.is_empty() {
        return Err(BAD);
    }
    Ok(specs)
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolves parsed specs against a representation length.
///
/// Only a single range is served as 206; several ranges get the full body (RFC 9110 lets a
/// server ignore Range, and multipart/byteranges buys clients nothing a second request can't).
pub fn resolve_range(specs: &[ByteRangeSpec], len: u64) -> RangeRequest {
    let [spec] = specs else {
        return RangeRequest::Full;
    };
    let range = match *spec {
        ByteRangeSpec::FromTo(a, b) if a < len => ByteRange {
            start: a,
            end: b.saturating_add(1).min(len),
        },
        ByteRangeSpec::From(a) if a < len => ByteRange { start: a, end: len },
        // RFC 9110 §14.1.1: a non-zero suffix is satisfiable even by an empty
        // representation, which is then the whole of it; no 206 can state an empty range.
        ByteRangeSpec::Suffix(n) if n > 0 && len == 0 => return RangeRequest::Full,
        ByteRangeSpec::Suffix(n) if n > 0 => ByteRange {
            start: len.saturating_sub(n),
            end: len,
        },
        _ => return RangeRequest::Unsatisfiable,
    };
    RangeRequest::Partial(range)
}

/// An entity tag (RFC 9110 §8.8.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag {
    weak: bool,
    opaque: String,
}

impl ETag {
    /// A strong tag with the given opaque value (without quotes).
    ///
    /// # Panics
    /// If `opaque` holds a `"`, which no tag may.
    pub fn strong(opaque: impl Into<String>) -> Self {
        let opaque = opaque.into();
        assert!(!opaque.contains('"'), "an entity tag cannot hold a quote");
        ETag {
            weak: false,
            opaque,
        }
    }

    /// True for `W/"..."` tags.
    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// Parses one tag, `"x"` or `W/"x"`.
    ///
    /// # Errors
    /// [`ParseError::Header`] if the text is not a quoted tag.
    pub fn parse(s: &str) -> Result<ETag, ParseError> {
        let s = s.trim();
        let (weak, rest) = match s.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let opaque = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .filter(|o| !o.contains('"'))
            .ok_or(ParseError::header("ETag", "entity tags are quoted strings"))?;
        Ok(ETag {
            weak,
            opaque: opaque.to_owned(),
        })
    }

    /// Strong comparison: both strong and the same opaque value.
    pub fn strong_eq(&self, other: &ETag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison: the same opaque value.
    pub fn weak_eq(&self, other: &ETag) -> bool {
        self.opaque == other.opaque
    }
}

impl ETag {
    /// Appends the tag as it goes on the wire, without `fmt`.
    pub fn write_into(&self, out: &mut String) {
        if self.weak {
            out.push_str("W/");
        }
        out.push('"');
        out.push_str(&self.opaque);
        out.push('"');
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.opaque)
    }
}

/// The value of `If-Match` or `If-None-Match`: `*` or a list of tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ETagList {
    /// `*`: any current representation.
    Any,
    /// The listed tags. Members that do not parse are dropped: they can match nothing.
    Tags(Vec<ETag>),
}

impl ETagList {
    /// Parses a header value; several header lines are joined with `,` by the caller.
    pub fn parse(value: &str) -> ETagList {
        if value.trim() == "*" {
            return ETagList::Any;
        }
        ETagList::Tags(
            split_tags(value)
                .filter_map(|t| ETag::parse(t).ok())
                .collect(),
        )
    }

    /// `If-Match` semantics: strong comparison.
    pub fn matches_strong(&self, current: Option<&ETag>) -> bool {
        match (self, current) {
            (_, None) => false,
            (ETagList::Any, Some(_)) => true,
            (ETagList::Tags(tags), Some(c)) => tags.iter().any(|t| t.strong_eq(c)),
        }
    }

    /// `If-None-Match` semantics: weak comparison.
    pub fn matches_weak(&self, current: Option<&ETag>) -> bool {
        match (self, current) {
            (_, None) => false,
            (ETagList::Any, Some(_)) => true,
            (ETagList::Tags(tags), Some(c)) => tags.iter().any(|t| t.weak_eq(c)),
        }
    }
}

/// Splits a list of entity tags on the commas outside quotes.
fn split_tags(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = value;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                return None;
            }
            let mut in_quotes = false;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    if c == '"' {
                        in_quotes = !in_quotes;
                    }
                    c == ',' && !in_quotes
                })
                .map_or(rest.len(), |(i, _)| i);
            let item = rest[..end].trim();
            rest = &rest[end..];
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn depth_table() {
        let d = Depth::Infinity;
        assert_eq!(Depth::parse(None, d), Ok(Depth::Infinity));
        assert_eq!(Depth::parse(Some("0"), d), Ok(Depth::Zero));
        assert_eq!(Depth::parse(Some(" 1 "), d), Ok(Depth::One));
        assert_eq!(Depth::parse(Some("Infinity"), d), Ok(Depth::Infinity));
        assert!(Depth::parse(Some("2"), d).is_err());
        assert!(Depth::parse(Some(""), d).is_err());
        assert!(Depth::parse(Some("infinite"), d).is_err());
    }

    #[test]
    fn overwrite_table() {
        assert_eq!(Overwrite::parse(None), Ok(Overwrite::Allow));
        assert_eq!(Overwrite::parse(Some("T")), Ok(Overwrite::Allow));
        assert_eq!(Overwrite::parse(Some("F")), Ok(Overwrite::Forbid));
        assert!(Overwrite::parse(Some("yes")).is_err());
    }

    #[test]
    fn destination_table() {
        let d = Destination::parse("http://Example.com:8080/a%20b/c/").unwrap();
        assert_eq!(d.authority.as_deref(), Some("example.com:8080"));
        assert_eq!(d.path.as_str(), "/a b/c");
        assert!(d.trailing_slash);
        let d = Destination::parse("/x?q=1").unwrap();
        assert_eq!(d.authority, None);
        assert_eq!(d.path.as_str(), "/x");
        let d = Destination::parse("https://h").unwrap();
        assert_eq!(d.path, ResourcePath::root());
        assert!(Destination::parse("ftp://h/x").is_err());
        assert!(Destination::parse("x/y").is_err());
        assert!(Destination::parse("http:///x").is_err());
        assert!(Destination::parse("http://h/../etc/passwd").is_err());
        assert!(Destination::parse("http://h/a%2f..%2fb").is_err());
    }

    #[test]
    fn range_table() {
        use ByteRangeSpec::*;
        assert_eq!(parse_range("bytes=0-99"), Ok(vec![FromTo(0, 99)]));
        assert_eq!(parse_range("bytes=5-"), Ok(vec![From(5)]));
        assert_eq!(parse_range("bytes=-5"), Ok(vec![Suffix(5)]));
        assert_eq!(
            parse_range("bytes= 0-1 , 3-4"),
            Ok(vec![FromTo(0, 1), FromTo(3, 4)])
        );
        for bad in [
            "bytes=",
            "bytes=-",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "0-1",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        let r = |a, b| RangeRequest::Partial(ByteRange { start: a, end: b });
        assert_eq!(resolve_range(&[FromTo(0, 99)], 50), r(0, 50));
        assert_eq!(resolve_range(&[FromTo(10, 19)], 50), r(10, 20));
        assert_eq!(resolve_range(&[Suffix(10)], 50), r(40, 50));
        assert_eq!(resolve_range(&[Suffix(100)], 50), r(0, 50));
        assert_eq!(resolve_range(&[From(49)], 50), r(49, 50));
        assert_eq!(resolve_range(&[From(50)], 50), RangeRequest::Unsatisfiable);
        assert_eq!(resolve_range(&[Suffix(0)], 50), RangeRequest::Unsatisfiable);
        assert_eq!(resolve_range(&[Suffix(1)], 0), RangeRequest::Full);
        assert_eq!(resolve_range(&[Suffix(0)], 0), RangeRequest::Unsatisfiable);
        assert_eq!(resolve_range(&[From(0)], 0), RangeRequest::Unsatisfiable);
        assert_eq!(resolve_range(&[From(0), From(1)], 50), RangeRequest::Full);
    }

    #[test]
    fn etag_lists() {
        let cur = ETag::strong("abc");
        assert!(ETagList::parse("*").matches_strong(Some(&cur)));
        assert!(!ETagList::parse("*").matches_strong(None));
        assert!(ETagList::parse("\"x\", \"abc\"").matches_strong(Some(&cur)));
        assert!(!ETagList::parse("W/\"abc\"").matches_strong(Some(&cur)));
        assert!(ETagList::parse("W/\"abc\"").matches_weak(Some(&cur)));
        assert!(ETagList::parse("\"a,b\", \"abc\"").matches_strong(Some(&cur)));
        assert!(!ETagList::parse("garbage").matches_weak(Some(&cur)));
        assert_eq!(ETag::parse("W/\"q\"").unwrap().to_string(), "W/\"q\"");
    }

    proptest! {
        #[test]
        fn range_parse_and_resolve_never_panic(v in "[ -~]{0,40}", len in 0u64..1000) {
            if let Ok(specs) = parse_range(&v)
                && let RangeRequest::Partial(r) = resolve_range(&specs, len) {
                    prop_assert!(r.start < r.end && r.end <= len);
                }
        }

        #[test]
        fn destination_never_panics(v in "[ -~]{0,60}") {
            let _ = Destination::parse(&v);
        }

        #[test]
        fn etag_list_never_panics(v in "[ -~]{0,60}") {
            let _ = ETagList::parse(&v);
        }
    }
}
