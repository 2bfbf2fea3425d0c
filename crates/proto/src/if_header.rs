//! The `If` header (RFC 4918 §10.4): lists of state-token and entity-tag conditions,
//! optionally tagged with the resource they apply to.
//!
//! ```text
//! If = ( 1*No-tag-list | 1*Tagged-list )
//! No-tag-list = List
//! Tagged-list = Resource-Tag 1*List
//! List = "(" 1*Condition ")"
//! Condition = ["Not"] ( State-token | "[" entity-tag "]" )
//! Resource-Tag = "<" Simple-ref ">"
//! ```
//!
//! Parsing is separate from evaluation: the server decides what a token or tag matches.

use crate::header::{Destination, ETag};
use crate::{BasePath, ParseError, ResourcePath};

/// Bounds the work one header can cause.
const MAX_CONDITIONS: usize = 256;

/// A parsed `If` header: true when any list is true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfHeader {
    /// The lists, in header order.
    pub lists: Vec<IfList>,
}

/// One parenthesized list: true when all its conditions are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfList {
    /// The resource the list is about; `None` means the Request-URI.
    pub resource: Option<ResourcePath>,
    /// The `host[:port]` of the resource tag, when it was an absolute URI: a list about
    /// another server's resource cannot hold here.
    pub authority: Option<String>,
    /// The conditions, all of which must hold.
    pub conditions: Vec<IfCondition>,
    /// The resource tag names a path outside the served tree (see [`IfHeader::served_under`]):
    /// the list cannot hold here.
    pub unserved: bool,
}

/// One condition of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfCondition {
    /// `Not` inverts the test.
    pub not: bool,
    /// What is tested.
    pub test: IfTest,
}

/// The two kinds of test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfTest {
    /// A state token (a lock token URI such as `urn:uuid:…`, or `DAV:no-lock`).
    Token(String),
    /// An entity tag the resource must have.
    ETag(ETag),
}

impl IfHeader {
    /// Parses a header value.
    ///
    /// # Errors
    /// [`ParseError::Header`] when the value breaks the grammar, mixes tagged and untagged
    /// lists, or holds more than 256 conditions; [`ParseError::Path`] when a resource tag
    /// cannot name a resource under the root.
    pub fn parse(value: &str) -> Result<IfHeader, ParseError> {
        let mut p = Parser {
            rest: value,
            count: 0,
        };
        let mut lists = Vec::new();
        let mut tagged = None;
        let mut resource: Option<ResourcePath> = None;
        let mut authority: Option<String> = None;
        loop {
            p.skip_ws();
            match p.peek() {
                None => break,
                Some('<') => {
                    if tagged == Some(false) {
                        return Err(bad("tagged and untagged lists are mixed"));
                    }
                    tagged = Some(true);
                    let uri = p.delimited('<', '>')?;
                    let tag = Destination::parse(uri)?;
                    resource = Some(tag.path);
                    authority = tag.authority;
                    p.skip_ws();
                    if p.peek() != Some('(') {
                        return Err(bad("a resource tag must be followed by a list"));
                    }
                }
                Some('(') => {
                    if tagged.is_none() {
                        tagged = Some(false);
                    }
                    let conditions = p.list()?;
                    lists.push(IfList {
                        resource: resource.clone(),
                        authority: authority.clone(),
                        conditions,
                        unserved: false,
                    });
                }
                Some(_) => return Err(bad("expected `<` or `(`")),
            }
        }
        if lists.is_empty() {
            return Err(bad("no list"));
        }
        Ok(IfHeader { lists })
    }

    /// Maps the resource tags, URL paths, to the served paths they name when the tree is
    /// served under `base`; lists about a path outside it are marked `unserved`.
    #[must_use]
    pub fn served_under(mut self, base: &BasePath) -> Self {
        if base.path().is_root() {
            return self;
        }
        let root = ResourcePath::root();
        for list in &mut self.lists {
            let Some(url_path) = &list.resource else {
                continue;
            };
            match url_path.rebase(base.path(), &root) {
                Some(served) => list.resource = Some(served),
                None => list.unserved = true,
            }
        }
        self
    }

    /// Evaluates the header: true when any list holds, a list holding when all its
    /// conditions do. `applies` says whether a list can hold here at all (one tagged with
    /// another server's resource cannot); `test` answers one condition, without its `Not`,
    /// for the resource the list is about (the Request-URI's `request` when untagged).
    /// Lists are tried in order and a list stops at its first false condition.
    pub fn evaluate(
        &self,
        request: &ResourcePath,
        mut applies: impl FnMut(&IfList) -> bool,
        mut test: impl FnMut(&ResourcePath, &IfTest) -> bool,
    ) -> bool {
        self.lists.iter().any(|list| {
            if list.unserved || !applies(list) {
                return false;
            }
            let resource = list.resource.as_ref().unwrap_or(request);
            list.conditions
                .iter()
                .all(|c| test(resource, &c.test) != c.not)
        })
    }

    /// Every state token in the header: all of them count as submitted (RFC 4918 §10.4.1).
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.lists.iter().flat_map(|l| {
            l.conditions.iter().filter_map(|c| match &c.test {
                IfTest::Token(t) => Some(t.as_str()),
                IfTest::ETag(_) => None,
            })
        })
    }
}

fn bad(reason: &'static str) -> ParseError {
    ParseError::Header {
        header: "If",
        reason,
    }
}

struct Parser<'a> {
    rest: &'a str,
    count: usize,
}

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\r', '\n']);
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    /// The text between `open` and the next `close`, both consumed.
    fn delimited(&mut self, open: char, close: char) -> Result<&'a str, ParseError> {
        let inner = self
            .rest
            .strip_prefix(open)
            .ok_or(bad("missing opening delimiter"))?;
        let end = inner.find(close).ok_or(bad("unterminated `<` or `[`"))?;
        self.rest = &inner[end + close.len_utf8()..];
        Ok(&inner[..end])
    }

    fn list(&mut self) -> Result<Vec<IfCondition>, ParseError> {
        self.rest = &self.rest[1..]; // the `(` seen by the caller
        let mut conditions = Vec::new();
        loop {
            self.skip_ws();
            let not = if self
                .rest
                .get(..3)
                .is_some_and(|w| w.eq_ignore_ascii_case("not"))
            {
                self.rest = &self.rest[3..];
                self.skip_ws();
                true
            } else {
                false
            };
            let test = match self.peek() {
                Some(')') if !not => {
                    self.rest = &self.rest[1..];
                    if conditions.is_empty() {
                        return Err(bad("empty list"));
                    }
                    return Ok(conditions);
                }
                Some('<') => {
                    let token = self.delimited('<', '>')?.trim();
                    if token.is_empty() {
                        return Err(bad("empty state token"));
                    }
                    IfTest::Token(token.to_owned())
                }
                Some('[') => IfTest::ETag(self.etag()?),
                _ => return Err(bad("expected a state token or an entity tag")),
            };
            self.count += 1;
            if self.count > MAX_CONDITIONS {
                return Err(bad("too many conditions"));
            }
            conditions.push(IfCondition { not, test });
        }
    }

    /// `[` entity-tag `]`, where the tag's quoted part may hold `]`.
    fn etag(&mut self) -> Result<ETag, ParseError> {
        let inner = &self.rest[1..];
        let open = inner.find('"').ok_or(bad("entity tags are quoted"))?;
        let close = inner[open + 1..]
            .find('"')
            .map(|i| open + 1 + i)
            .ok_or(bad("unterminated entity tag"))?;
        let after = inner[close + 1..].trim_start();
        let rest = after.strip_prefix(']').ok_or(bad("missing `]`"))?;
        let tag = ETag::parse(&inner[..=close]).map_err(|_| bad("invalid entity tag"))?;
        self.rest = rest;
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tok(t: &str, not: bool) -> IfCondition {
        IfCondition {
            not,
            test: IfTest::Token(t.into()),
        }
    }

    fn etag(t: &str, not: bool) -> IfCondition {
        IfCondition {
            not,
            test: IfTest::ETag(ETag::parse(t).unwrap()),
        }
    }

    #[test]
    fn tags_name_served_paths_under_a_base() {
        let h = IfHeader::parse(
            "<http://h/dav/a%20b> (<urn:uuid:1>) </dav> ([\"e\"]) </other/a> (<urn:uuid:2>)",
        )
        .unwrap();
        let base = BasePath::new(ResourcePath::parse("/dav").unwrap());
        let h = h.served_under(&base);
        let tags: Vec<_> = h
            .lists
            .iter()
            .map(|l| (l.resource.as_ref().unwrap().as_str(), l.unserved))
            .collect();
        assert_eq!(tags, [("/a b", false), ("/", false), ("/other/a", true)]);
        assert_eq!(
            h.tokens().count(),
            2,
            "every token still counts as submitted"
        );
        // A header whose only list is about another tree cannot hold.
        let request = ResourcePath::root();
        let unserved_only = IfHeader::parse("</other/a> (<urn:uuid:2>)")
            .unwrap()
            .served_under(&base);
        assert!(!unserved_only.evaluate(&request, |_| true, |_, _| true));
        assert!(h.evaluate(&request, |_| true, |_, _| true));
    }

    #[test]
    fn evaluation_table() {
        // The resource /a holds lock token urn:1 and entity tag "e1"; /b holds nothing.
        let state = |r: &ResourcePath, t: &IfTest| match t {
            IfTest::Token(t) => r.as_str() == "/a" && t == "urn:1",
            IfTest::ETag(e) => r.as_str() == "/a" && e.strong_eq(&ETag::parse("\"e1\"").unwrap()),
        };
        let a = ResourcePath::parse("/a").unwrap();
        let cases = [
            ("(<urn:1>)", true),
            ("(<urn:2>)", false),
            ("(Not <urn:2>)", true),
            ("(<urn:1> [\"e1\"])", true),
            ("(<urn:1> [\"e2\"])", false),
            ("(<urn:2>) ([\"e1\"])", true),
            ("(<DAV:no-lock>)", false),
            ("(Not <DAV:no-lock>)", true),
            ("</b> (<urn:1>)", false),
            ("</b> (Not <urn:1>)", true),
            ("</b> (<urn:1>) </a> (<urn:1>)", true),
            ("<http://elsewhere.example/a> (<urn:1>)", false),
        ];
        for (value, want) in cases {
            let h = IfHeader::parse(value).unwrap();
            let own = |l: &IfList| l.authority.is_none();
            assert_eq!(h.evaluate(&a, own, state), want, "{value}");
        }
    }

    #[test]
    fn untagged_lists() {
        let h = IfHeader::parse("(<urn:uuid:1> [\"e1\"]) (Not <DAV:no-lock> [\"e1\"])").unwrap();
        assert_eq!(
            h.lists,
            vec![
                IfList {
                    resource: None,
                    authority: None,
                    conditions: vec![tok("urn:uuid:1", false), etag("\"e1\"", false)],
                    unserved: false,
                },
                IfList {
                    resource: None,
                    authority: None,
                    conditions: vec![tok("DAV:no-lock", true), etag("\"e1\"", false)],
                    unserved: false,
                },
            ]
        );
        assert_eq!(
            h.tokens().collect::<Vec<_>>(),
            vec!["urn:uuid:1", "DAV:no-lock"]
        );
    }

    #[test]
    fn tagged_lists_apply_until_the_next_tag() {
        let h = IfHeader::parse("<http://h:8080/a%20b/> (<urn:x>) ([W/\"w\"]) </c> (NOT <urn:y>)")
            .unwrap();
        let a = ResourcePath::parse("/a%20b").unwrap();
        assert_eq!(h.lists.len(), 3);
        assert_eq!(h.lists[0].resource.as_ref(), Some(&a));
        assert_eq!(h.lists[0].authority.as_deref(), Some("h:8080"));
        assert_eq!(h.lists[2].authority, None);
        assert_eq!(h.lists[1].resource.as_ref(), Some(&a));
        assert_eq!(h.lists[1].conditions, vec![etag("W/\"w\"", false)]);
        assert_eq!(
            h.lists[2].resource,
            Some(ResourcePath::parse("/c").unwrap())
        );
        assert_eq!(h.lists[2].conditions, vec![tok("urn:y", true)]);
    }

    #[test]
    fn etags_may_hold_brackets() {
        let h = IfHeader::parse("([\"a]b\"])").unwrap();
        assert_eq!(h.lists[0].conditions, vec![etag("\"a]b\"", false)]);
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            "",
            "   ",
            "()",
            "(",
            "(<urn:x>",
            "<urn:x>",
            "</a>",
            "(<urn:x>) </a> (<urn:y>)",
            "</a> (<urn:x>) (<urn:y>) garbage",
            "([e])",
            "([\"e\"",
            "(Not)",
            "(<>)",
            "</../x> (<urn:x>)",
            "x",
        ] {
            assert!(IfHeader::parse(bad).is_err(), "{bad:?}");
        }
        let many = "(<a>)".repeat(300);
        assert!(IfHeader::parse(&many).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(v in "[ -~]{0,80}") {
            let _ = IfHeader::parse(&v);
        }

        #[test]
        fn never_panics_on_if_shaped_input(v in "[<>()\\[\\]\" NnOoTt:/a-c0-9W#%-]{0,60}") {
            let _ = IfHeader::parse(&v);
        }

        #[test]
        fn generated_headers_round_trip(lists in proptest::collection::vec(
            proptest::collection::vec((any::<bool>(), any::<bool>(), "[a-z0-9]{1,8}"), 1..4), 1..4)) {
            let mut text = String::new();
            for list in &lists {
                text.push('(');
                for (not, is_token, v) in list {
                    if *not { text.push_str("Not "); }
                    if *is_token { text.push_str(&format!("<urn:{v}> ")); } else { text.push_str(&format!("[\"{v}\"] ")); }
                }
                text.push(')');
            }
            let h = IfHeader::parse(&text).unwrap();
            prop_assert_eq!(h.lists.len(), lists.len());
            for (got, want) in h.lists.iter().zip(&lists) {
                prop_assert_eq!(got.conditions.len(), want.len());
                for (c, (not, is_token, v)) in got.conditions.iter().zip(want) {
                    prop_assert_eq!(c.not, *not);
                    match &c.test {
                        IfTest::Token(t) => { prop_assert!(*is_token); prop_assert_eq!(t, &format!("urn:{v}")); }
                        IfTest::ETag(e) => { prop_assert!(!*is_token); prop_assert_eq!(e.to_string(), format!("\"{v}\"")); }
                    }
                }
            }
        }
    }
}
