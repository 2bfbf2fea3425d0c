//! Resource paths (decoded, normalized) and hrefs (percent-encoded for the wire).
//!
//! A [`ResourcePath`] is what storage sees; an href is what goes into XML and headers. They are
//! different types so that one is never passed for the other.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::ParseError;

/// Bytes kept literal in an encoded segment: RFC 3986 unreserved characters and the sub-delims
/// that no client treats specially in a path. `&` is encoded too, so hrefs need no XML escaping.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// `text` composed (Unicode NFC, "é" as one character): one spelling for comparing names
/// however a client sent them (macOS decomposes them).
pub fn composed(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(text)
    }
}

/// `text` decomposed (Unicode NFD, "e" followed by a combining accent), as macOS spells
/// names.
pub fn decomposed(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        icu_normalizer::DecomposingNormalizerBorrowed::new_nfd().normalize(text)
    }
}

/// Percent-encodes a decoded absolute path for the wire, segment by segment; `/` separators
/// (a trailing one included) are kept.
pub fn encode_path(decoded: &str) -> String {
    let mut out = String::with_capacity(decoded.len() + 8);
    for (i, segment) in decoded.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        for chunk in utf8_percent_encode(segment, SEGMENT) {
            out.push_str(chunk);
        }
    }
    out
}

/// Whether a resource is a collection (a folder) or not. Collection hrefs end in `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A plain resource with a body.
    File,
    /// A collection (folder) of other resources.
    Collection,
}

impl ResourceKind {
    /// True for [`ResourceKind::Collection`].
    pub fn is_collection(self) -> bool {
        self == ResourceKind::Collection
    }
}

/// A decoded, normalized path of a resource below the served root.
///
/// Invariants: starts with `/`; `/` alone is the root; otherwise no trailing `/`; every
/// segment is non-empty UTF-8 that is neither `.` nor `..` and holds no `/` or NUL. A value
/// that holds them cannot escape the root whatever storage does with it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePath(String);

impl ResourcePath {
    /// The root collection, `/`.
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// Decodes the path part of a request URI (still percent-encoded, without query).
    ///
    /// Empty segments (`//`) and `.` collapse; a trailing `/` is dropped (whether the target
    /// must be a collection is the caller's business).
    ///
    /// # Errors
    /// [`ParseError::Path`] if the path is not absolute, has a `..` segment (encoded or not),
    /// encodes a `/` or NUL inside a segment, or is not UTF-8 once decoded.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if !raw.starts_with('/') {
            return Err(ParseError::Path("not an absolute path"));
        }
        let mut out = String::with_capacity(raw.len());
        for raw_segment in raw.split('/') {
            if raw_segment.is_empty() {
                continue;
            }
            let segment = percent_decode_str(raw_segment)
                .decode_utf8()
                .map_err(|_| ParseError::Path("not UTF-8 after percent-decoding"))?;
            match &*segment {
                "." => continue,
                ".." => return Err(ParseError::Path("`..` segments are not allowed")),
                _ => {}
            }
            check_segment_chars(&segment)?;
            out.push('/');
            out.push_str(&segment);
        }
        if out.is_empty() {
            out.push('/');
        }
        Ok(Self(out))
    }

    /// Rebuilds a path from its decoded text, as [`ResourcePath::as_str`] gave it (e.g. a
    /// database key). Nothing is percent-decoded.
    ///
    /// # Errors
    /// [`ParseError::Path`] if the text breaks the invariants of the type.
    pub fn from_decoded(text: &str) -> Result<Self, ParseError> {
        if text == "/" {
            return Ok(Self::root());
        }
        let rest = text
            .strip_prefix('/')
            .ok_or(ParseError::Path("not an absolute path"))?;
        for segment in rest.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(ParseError::Path("empty, `.` or `..` segment"));
            }
            check_segment_chars(segment)?;
        }
        Ok(Self(text.to_owned()))
    }

    /// The path as text: `/` or `/a/b`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// The last segment, or `""` for the root.
    pub fn name(&self) -> &str {
        match self.0.rfind('/') {
            Some(i) => &self.0[i + 1..],
            None => "",
        }
    }

    /// The enclosing collection, or `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        let i = self.0.rfind('/').expect("a non-root path holds a `/`");
        Some(if i == 0 {
            Self::root()
        } else {
            Self(self.0[..i].to_owned())
        })
    }

    /// The member `name` of this collection.
    ///
    /// # Errors
    /// [`ParseError::Path`] if `name` is empty, `.` or `..`, or holds `/` or NUL.
    pub fn join(&self, name: &str) -> Result<Self, ParseError> {
        if name.is_empty() || name == "." || name == ".." {
            return Err(ParseError::Path("not a valid member name"));
        }
        check_segment_chars(name)?;
        let mut s = String::with_capacity(self.0.len() + 1 + name.len());
        if !self.is_root() {
            s.push_str(&self.0);
        }
        s.push('/');
        s.push_str(name);
        Ok(Self(s))
    }

    /// The segments from the root down; empty for the root.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// Number of segments: 0 for the root.
    pub fn depth(&self) -> usize {
        self.segments().count()
    }

    /// True if `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &ResourcePath) -> bool {
        if other.is_root() {
            return true;
        }
        match self.0.strip_prefix(&other.0) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The path this one would have if `from` (an ancestor or itself) were renamed to `to`.
    pub fn rebase(&self, from: &ResourcePath, to: &ResourcePath) -> Option<ResourcePath> {
        if !self.starts_with(from) {
            return None;
        }
        let rest = if from.is_root() {
            self.0.as_str()
        } else {
            &self.0[from.0.len()..]
        };
        if rest.is_empty() || rest == "/" {
            return Some(to.clone());
        }
        let mut s = String::with_capacity(to.0.len() + rest.len());
        if !to.is_root() {
            s.push_str(&to.0);
        }
        s.push_str(rest);
        Some(Self(s))
    }

    /// Appends the percent-encoded href of this path to `out`; collections end in `/`.
    pub fn write_href(&self, kind: ResourceKind, out: &mut String) {
        for segment in self.segments() {
            out.push('/');
            for chunk in utf8_percent_encode(segment, SEGMENT) {
                out.push_str(chunk);
            }
        }
        if self.is_root() || kind.is_collection() {
            out.push('/');
        }
    }

    /// The percent-encoded href of this path; collections end in `/`.
    pub fn to_href(&self, kind: ResourceKind) -> Href {
        let mut s = String::with_capacity(self.0.len() + 8);
        self.write_href(kind, &mut s);
        Href(s)
    }
}

fn check_segment_chars(segment: &str) -> Result<(), ParseError> {
    if segment.contains('/') {
        return Err(ParseError::Path("encoded `/` inside a segment"));
    }
    if segment.contains('\0') {
        return Err(ParseError::Path("NUL in a segment"));
    }
    Ok(())
}

impl fmt::Debug for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the served tree sits in URLs: behind a reverse proxy that forwards `/dav/` as it
/// is, requests name `/dav/…` and every href must begin with `/dav/` too. The root unless
/// set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePath {
    path: ResourcePath,
    /// The percent-encoded prefix without its trailing slash; empty for the root.
    prefix: String,
}

impl Default for BasePath {
    fn default() -> Self {
        Self::new(ResourcePath::root())
    }
}

impl BasePath {
    /// The tree served under `path`.
    pub fn new(path: ResourcePath) -> Self {
        let mut prefix = String::new();
        if !path.is_root() {
            path.write_href(ResourceKind::File, &mut prefix);
        }
        BasePath { path, prefix }
    }

    /// The base as a path.
    pub fn path(&self) -> &ResourcePath {
        &self.path
    }

    /// The percent-encoded prefix every href starts with: empty for the root, else `/dav`
    /// (no trailing slash).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The served resource a URL's path names, or `None` when the path lies outside the
    /// base.
    pub fn strip(&self, url_path: ResourcePath) -> Option<ResourcePath> {
        if self.path.is_root() {
            return Some(url_path);
        }
        url_path.rebase(&self.path, &ResourcePath::root())
    }

    /// Appends the href of the served resource `path`.
    pub fn write_href(&self, path: &ResourcePath, kind: ResourceKind, out: &mut String) {
        out.push_str(&self.prefix);
        path.write_href(kind, out);
    }

    /// The href of the served resource `path`.
    pub fn href(&self, path: &ResourcePath, kind: ResourceKind) -> Href {
        let mut s = String::with_capacity(self.prefix.len() + path.0.len() + 8);
        self.write_href(path, kind, &mut s);
        Href(s)
    }
}

/// A percent-encoded absolute path as it appears on the wire (`<D:href>`, `Location`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Href(String);

impl Href {
    /// The encoded text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Href {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base_path_table() {
        let p = |s| ResourcePath::parse(s).unwrap();
        let dav = BasePath::new(p("/web%20dav/"));
        assert_eq!(dav.prefix(), "/web%20dav");
        // (URL path, served path)
        let cases: &[(&str, Option<&str>)] = &[
            ("/web%20dav", Some("/")),
            ("/web%20dav/", Some("/")),
            ("/web%20dav/a/b%25", Some("/a/b%")),
            ("/web%20dav2/a", None),
            ("/web", None),
            ("/", None),
            ("/other/web%20dav/a", None),
        ];
        for (url, served) in cases {
            let got = dav.strip(p(url));
            assert_eq!(got.as_ref().map(ResourcePath::as_str), *served, "{url}");
        }
        assert_eq!(
            dav.href(&p("/a b"), ResourceKind::File).as_str(),
            "/web%20dav/a%20b"
        );
        assert_eq!(
            dav.href(&ResourcePath::root(), ResourceKind::Collection)
                .as_str(),
            "/web%20dav/"
        );
        let root = BasePath::default();
        assert_eq!(root.prefix(), "");
        assert_eq!(root.strip(p("/a")), Some(p("/a")));
        assert_eq!(
            root.href(&p("/a"), ResourceKind::Collection).as_str(),
            "/a/"
        );
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/", Some("/")),
            ("//", Some("/")),
            ("/a/b/", Some("/a/b")),
            ("/a//b", Some("/a/b")),
            ("/a/./b", Some("/a/b")),
            ("/a%20b", Some("/a b")),
            ("/%E2%82%AC", Some("/€")),
            ("/caf%C3%A9/", Some("/café")),
            ("/a%23b%3Fc", Some("/a#b?c")),
            ("/100%25", Some("/100%")),
            ("/a/../b", None),
            ("/..", None),
            ("/%2e%2e/x", None),
            ("/%2E%2E", None),
            ("/a%2fb", None),
            ("/a%2Fb", None),
            ("/a%00b", None),
            ("/%FF", None),
            ("a/b", None),
            ("", None),
        ];
        for (raw, want) in cases {
            let got = ResourcePath::parse(raw).ok();
            assert_eq!(got.as_ref().map(|p| p.as_str()), *want, "parse({raw:?})");
        }
    }

    #[test]
    fn href_encoding_table() {
        let cases: &[(&str, ResourceKind, &str)] = &[
            ("/", ResourceKind::Collection, "/"),
            ("/", ResourceKind::File, "/"),
            ("/a b", ResourceKind::File, "/a%20b"),
            ("/dir", ResourceKind::Collection, "/dir/"),
            ("/100%", ResourceKind::File, "/100%25"),
            ("/a#b?c&d", ResourceKind::File, "/a%23b%3Fc%26d"),
            ("/€/x", ResourceKind::File, "/%E2%82%AC/x"),
            ("/a<b>", ResourceKind::File, "/a%3Cb%3E"),
        ];
        for (path, kind, want) in cases {
            let p = ResourcePath::parse(&ResourcePath(path.to_string()).to_href(*kind).0)
                .expect("round trip");
            assert_eq!(p.as_str(), *path);
            assert_eq!(
                ResourcePath(path.to_string()).to_href(*kind).as_str(),
                *want
            );
        }
    }

    #[test]
    fn encode_path_keeps_separators() {
        assert_eq!(encode_path("/a b/€/"), "/a%20b/%E2%82%AC/");
        assert_eq!(encode_path("/"), "/");
        assert_eq!(encode_path("/x#y"), "/x%23y");
    }

    #[test]
    fn parent_name_join() {
        let p = ResourcePath::parse("/a/b/c").unwrap();
        assert_eq!(p.name(), "c");
        assert_eq!(p.parent().unwrap().as_str(), "/a/b");
        assert_eq!(
            ResourcePath::parse("/a").unwrap().parent(),
            Some(ResourcePath::root())
        );
        assert_eq!(ResourcePath::root().parent(), None);
        assert_eq!(ResourcePath::root().join("x").unwrap().as_str(), "/x");
        assert!(ResourcePath::root().join("..").is_err());
        assert!(ResourcePath::root().join("a/b").is_err());
        assert!(ResourcePath::root().join("").is_err());
    }

    #[test]
    fn from_decoded_checks_invariants_without_decoding() {
        assert_eq!(
            ResourcePath::from_decoded("/a%20b").unwrap().name(),
            "a%20b"
        );
        assert_eq!(
            ResourcePath::from_decoded("/").unwrap(),
            ResourcePath::root()
        );
        for bad in ["", "a", "/a/", "//", "/a//b", "/..", "/a/./b", "/a\0b"] {
            assert!(ResourcePath::from_decoded(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn starts_with_is_segment_wise() {
        let ab = ResourcePath::parse("/a/b").unwrap();
        assert!(ab.starts_with(&ResourcePath::parse("/a").unwrap()));
        assert!(ab.starts_with(&ab));
        assert!(ab.starts_with(&ResourcePath::root()));
        assert!(
            !ResourcePath::parse("/ab")
                .unwrap()
                .starts_with(&ResourcePath::parse("/a").unwrap())
        );
    }

    #[test]
    fn rebase_moves_subtrees() {
        let p = ResourcePath::parse("/a/b/c").unwrap();
        let from = ResourcePath::parse("/a").unwrap();
        let to = ResourcePath::parse("/x/y").unwrap();
        assert_eq!(p.rebase(&from, &to).unwrap().as_str(), "/x/y/b/c");
        assert_eq!(from.rebase(&from, &to).unwrap(), to);
        assert_eq!(p.rebase(&to, &from), None);
        assert_eq!(
            p.rebase(&ResourcePath::root(), &to).unwrap().as_str(),
            "/x/y/a/b/c"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_upholds_invariants(raw in "/[ -~]{0,40}") {
            if let Ok(p) = ResourcePath::parse(&raw) {
                let s = p.as_str();
                prop_assert!(s.starts_with('/'));
                prop_assert!(s == "/" || !s.ends_with('/'));
                for seg in p.segments() {
                    prop_assert!(!seg.is_empty() && seg != "." && seg != "..");
                    prop_assert!(!seg.contains('\0'));
                }
            }
        }

        #[test]
        fn href_round_trips(segs in proptest::collection::vec("[^/\u{0}]{1,12}", 0..5)) {
            let segs: Vec<String> = segs.into_iter().filter(|s| s != "." && s != "..").collect();
            let mut p = ResourcePath::root();
            for s in &segs {
                p = p.join(s).unwrap();
            }
            let href = p.to_href(ResourceKind::File);
            prop_assert!(href.as_str().bytes().all(|b| b.is_ascii_graphic()));
            prop_assert_eq!(ResourcePath::parse(href.as_str()).unwrap(), p);
        }

        #[test]
        fn hrefs_under_a_base_name_what_they_were_written_for(
            base in proptest::collection::vec("[^/\u{0}]{1,8}", 0..3),
            segs in proptest::collection::vec("[^/\u{0}]{1,8}", 0..4),
        ) {
            let path = |segs: Vec<String>| {
                let mut p = ResourcePath::root();
                for s in segs.iter().filter(|s| *s != "." && *s != "..") {
                    p = p.join(s).unwrap();
                }
                p
            };
            let (base, p) = (BasePath::new(path(base)), path(segs));
            let href = base.href(&p, ResourceKind::Collection);
            let url_path = ResourcePath::parse(href.as_str()).unwrap();
            prop_assert_eq!(base.strip(url_path), Some(p));
        }
    }
}
