//! Lock vocabulary (RFC 4918 §6, §9.10, §14): `lockinfo` bodies, `Timeout` and `Lock-Token`
//! headers, and the `activelock` element.

use std::fmt::Write;

use crate::header::Depth;
use crate::prop::DAV_NS;
use crate::xml::{XmlLimits, escape_text_into, parse_document};
use crate::{BasePath, ParseError, ResourceKind, ResourcePath};

/// Exclusive or shared (RFC 4918 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockScope {
    /// No other lock may cover the resource.
    Exclusive,
    /// Other shared locks may cover the resource.
    Shared,
}

impl LockScope {
    /// `exclusive` or `shared`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockScope::Exclusive => "exclusive",
            LockScope::Shared => "shared",
        }
    }

    /// The inverse of [`LockScope::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "exclusive" => Some(LockScope::Exclusive),
            "shared" => Some(LockScope::Shared),
            _ => None,
        }
    }
}

/// A LOCK request body (RFC 4918 §14.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// The scope asked for.
    pub scope: LockScope,
    /// The content of `owner`, kept verbatim as a self-contained XML fragment.
    pub owner: Option<String>,
}

impl LockInfo {
    /// Parses a `lockinfo` body. Only write locks exist (RFC 4918 §7).
    ///
    /// # Errors
    /// [`ParseError`] if the body is not XML, is refused, or is not a valid `lockinfo`.
    pub fn from_xml(body: &[u8], limits: XmlLimits) -> Result<LockInfo, ParseError> {
        let root = parse_document(body, limits)?;
        if !root.is(DAV_NS, "lockinfo") {
            return Err(ParseError::Body(format!(
                "expected DAV:lockinfo, found {{{}}}{}",
                root.namespace, root.local
            )));
        }
        let mut scope = None;
        let mut write = false;
        let mut owner = None;
        for child in root.elements().filter(|e| e.namespace == DAV_NS) {
            match child.local.as_str() {
                "lockscope" => {
                    scope = child
                        .elements()
                        .filter(|e| e.namespace == DAV_NS)
                        .find_map(|e| LockScope::from_name(&e.local));
                }
                "locktype" => write = child.elements().any(|e| e.is(DAV_NS, "write")),
                "owner" => owner = Some(child.inner_xml()),
                _ => {}
            }
        }
        let scope = scope.ok_or_else(|| {
            ParseError::Body("lockinfo needs lockscope exclusive or shared".to_owned())
        })?;
        if !write {
            return Err(ParseError::Body("only write locks exist".to_owned()));
        }
        Ok(LockInfo { scope, owner })
    }
}

/// The `Timeout` header (RFC 4918 §10.7): the first value Davit understands wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// `Second-N`.
    Seconds(u64),
    /// `Infinite`.
    Infinite,
}

impl Timeout {
    /// Parses a header value such as `Infinite, Second-4100000000`.
    ///
    /// # Errors
    /// [`ParseError::Header`] if no listed value is valid.
    pub fn parse(value: &str) -> Result<Timeout, ParseError> {
        for part in value.split(',') {
            let part = part.trim();
            if part.eq_ignore_ascii_case("infinite") {
                return Ok(Timeout::Infinite);
            }
            if let Some(n) = part.get(..7).filter(|p| p.eq_ignore_ascii_case("second-")) {
                let digits = &part[n.len()..];
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    // Larger than any sane timeout: saturate instead of failing.
                    return Ok(Timeout::Seconds(digits.parse().unwrap_or(u64::MAX)));
                }
            }
        }
        Err(ParseError::Header {
            header: "Timeout",
            reason: "expected Second-N or Infinite",
        })
    }
}

/// Parses a `Lock-Token` header: a Coded-URL, `<token>` (RFC 4918 §10.5).
///
/// # Errors
/// [`ParseError::Header`] if the value is not `<...>` around a non-empty token.
pub fn parse_lock_token(value: &str) -> Result<String, ParseError> {
    let token = value
        .trim()
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.contains(['<', '>']))
        .ok_or(ParseError::Header {
            header: "Lock-Token",
            reason: "expected <token>",
        })?;
    Ok(token.to_owned())
}

/// What an `activelock` element shows about one lock.
#[derive(Debug, Clone, Copy)]
pub struct ActiveLock<'a> {
    /// Exclusive or shared.
    pub scope: LockScope,
    /// `Depth::Zero` or `Depth::Infinity`.
    pub depth: Depth,
    /// The owner fragment, verbatim.
    pub owner: Option<&'a str>,
    /// Seconds left, or `None` for an infinite lock.
    pub timeout: Option<u64>,
    /// The lock token URI.
    pub token: &'a str,
    /// The locked resource.
    pub root: &'a ResourcePath,
    /// Whether the locked resource is a collection (its href ends in `/`).
    pub root_kind: ResourceKind,
    /// Where the served tree sits in URLs.
    pub base: &'a BasePath,
}

impl ActiveLock<'_> {
    /// Appends `<D:activelock>…</D:activelock>` (the `D` prefix must be bound to `DAV:`).
    pub fn write(&self, out: &mut String) {
        out.push_str("<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:");
        out.push_str(self.scope.as_str());
        out.push_str("/></D:lockscope><D:depth>");
        let _ = write!(out, "{}", self.depth);
        out.push_str("</D:depth>");
        if let Some(owner) = self.owner {
            out.push_str("<D:owner>");
            out.push_str(owner);
            out.push_str("</D:owner>");
        }
        match self.timeout {
            Some(secs) => {
                let _ = write!(out, "<D:timeout>Second-{secs}</D:timeout>");
            }
            None => out.push_str("<D:timeout>Infinite</D:timeout>"),
        }
        out.push_str("<D:locktoken><D:href>");
        escape_text_into(self.token, out);
        out.push_str("</D:href></D:locktoken><D:lockroot><D:href>");
        self.base.write_href(self.root, self.root_kind, out);
        out.push_str("</D:href></D:lockroot></D:activelock>");
    }
}

/// The body of a LOCK response: `prop` holding `lockdiscovery` with these locks.
pub fn lock_response_body<'a>(locks: impl IntoIterator<Item = ActiveLock<'a>>) -> String {
    // One lock with a short owner fits; growing the string step by step cost more than
    // writing it.
    let mut out = String::with_capacity(640);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>",
    );
    for l in locks {
        l.write(&mut out);
    }
    out.push_str("</D:lockdiscovery></D:prop>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lockinfo_table() {
        let l = LockInfo::from_xml(
            br#"<?xml version="1.0"?><lockinfo xmlns='DAV:'><lockscope><shared/></lockscope><locktype><write/></locktype><owner><href xmlns="DAV:">mailto:a@b</href> me</owner></lockinfo>"#,
            XmlLimits::default(),
        )
        .unwrap();
        assert_eq!(l.scope, LockScope::Shared);
        assert_eq!(
            l.owner.as_deref(),
            Some(r#"<href xmlns="DAV:">mailto:a@b</href> me"#)
        );
        let l = LockInfo::from_xml(
            br#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#,
            XmlLimits::default(),
        )
        .unwrap();
        assert_eq!((l.scope, l.owner), (LockScope::Exclusive, None));
        for bad in [
            r#"<lockinfo xmlns="DAV:"><locktype><write/></locktype></lockinfo>"#,
            r#"<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope></lockinfo>"#,
            r#"<lockinfo xmlns="DAV:"><lockscope><other/></lockscope><locktype><write/></locktype></lockinfo>"#,
            r#"<propfind xmlns="DAV:"/>"#,
        ] {
            assert!(
                LockInfo::from_xml(bad.as_bytes(), XmlLimits::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn timeout_table() {
        assert_eq!(Timeout::parse("Second-3600"), Ok(Timeout::Seconds(3600)));
        assert_eq!(Timeout::parse("second-5"), Ok(Timeout::Seconds(5)));
        assert_eq!(
            Timeout::parse("Infinite, Second-4100000000"),
            Ok(Timeout::Infinite)
        );
        assert_eq!(Timeout::parse("Weird, Second-10"), Ok(Timeout::Seconds(10)));
        assert_eq!(
            Timeout::parse("Second-99999999999999999999999"),
            Ok(Timeout::Seconds(u64::MAX))
        );
        for bad in ["", "Second-", "Second--1", "Seconds-5", "5", "Second-5x"] {
            assert!(Timeout::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lock_token_table() {
        assert_eq!(parse_lock_token("<urn:uuid:abc>").unwrap(), "urn:uuid:abc");
        assert_eq!(
            parse_lock_token(" < opaquelocktoken:x > ").unwrap(),
            "opaquelocktoken:x"
        );
        for bad in ["urn:uuid:abc", "<>", "<a", "<<a>>"] {
            assert!(parse_lock_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn activelock_is_well_formed() {
        let root = ResourcePath::parse("/a%20b").unwrap();
        let base = BasePath::new(ResourcePath::parse("/dav").unwrap());
        let body = lock_response_body([ActiveLock {
            scope: LockScope::Exclusive,
            depth: Depth::Infinity,
            owner: Some("litmus &amp; co"),
            timeout: Some(3600),
            token: "urn:uuid:1",
            root: &root,
            root_kind: ResourceKind::Collection,
            base: &base,
        }]);
        let doc = parse_document(body.as_bytes(), XmlLimits::default()).unwrap();
        assert!(doc.is(DAV_NS, "prop"));
        assert!(body.contains("<D:href>urn:uuid:1</D:href>"));
        assert!(body.contains("<D:depth>infinity</D:depth>"));
        assert!(body.contains("<D:timeout>Second-3600</D:timeout>"));
        assert!(body.contains("<D:owner>litmus &amp; co</D:owner>"));
        assert!(body.contains("<D:lockroot><D:href>/dav/a%20b/</D:href></D:lockroot>"));
    }

    proptest! {
        #[test]
        fn timeout_never_panics(v in "[ -~]{0,40}") {
            let _ = Timeout::parse(&v);
        }

        #[test]
        fn lock_token_never_panics(v in "\\PC{0,40}") {
            let _ = parse_lock_token(&v);
        }
    }
}
