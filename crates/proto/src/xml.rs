//! Bounded, namespace-aware parsing of request bodies into a small tree, and the escaping and
//! canonical serialization used for dead property values.
//!
//! Request bodies are small (bounded by the server before parsing), so a tree is simpler than
//! a pull parser for the body types and costs nothing that matters. What this module refuses:
//! DTDs (so no entity can be declared, let alone expanded), undefined entities, unbound
//! prefixes (including `xmlns:p=""` undeclarations, RFC 4918 §8.1 / litmus `propfind_invalid2`),
//! a second root element, and documents deeper or larger than [`XmlLimits`].

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::ParseError;

/// The namespace of the `xml:` prefix, which is always bound.
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Bounds on a parsed body, on top of the byte limit the server applies before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Deepest element nesting accepted.
    pub max_depth: usize,
    /// Most elements accepted in one document.
    pub max_elements: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_depth: 64,
            max_elements: 100_000,
        }
    }
}

/// An element with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI; empty when the element is in no namespace.
    pub namespace: String,
    /// Local name.
    pub local: String,
    /// Attributes other than namespace declarations.
    pub attributes: Vec<Attribute>,
    /// Child elements and text, in document order.
    pub children: Vec<Node>,
    /// The `xml:lang` in scope for this element, if any.
    pub lang: Option<String>,
}

/// An attribute with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Namespace URI; empty for unprefixed attributes.
    pub namespace: String,
    /// Local name.
    pub local: String,
    /// Value with entities resolved and whitespace normalized.
    pub value: String,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (text, CDATA and resolved references, merged).
    Text(String),
}

impl Element {
    /// True if this element is `{namespace}local`.
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.local == local && self.namespace == namespace
    }

    /// The child elements, skipping text.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The concatenated text of the direct children.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// The children serialized as a self-contained XML fragment: every element carries the
    /// namespace declarations it needs, so the fragment means the same wherever it is pasted
    /// inside an element whose default namespace is empty.
    pub fn inner_xml(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            write_node(child, "", &mut out);
        }
        out
    }
}

/// Whether two attributes share a namespace and local name (in linear time: a bounded
/// body still holds tens of thousands of attributes).
fn repeats_a_name(attributes: &[Attribute]) -> bool {
    if attributes.len() < 2 {
        return false;
    }
    let mut seen = std::collections::HashSet::with_capacity(attributes.len());
    attributes
        .iter()
        .any(|a| !seen.insert((a.namespace.as_str(), a.local.as_str())))
}

fn write_node(node: &Node, default_ns: &str, out: &mut String) {
    match node {
        Node::Text(t) => escape_text_into(t, out),
        Node::Element(e) => {
            // The xml: namespace is bound to its prefix and may be declared no other way.
            let in_xml = e.namespace == XML_NS;
            out.push('<');
            if in_xml {
                out.push_str("xml:");
            }
            out.push_str(&e.local);
            if !in_xml && e.namespace != default_ns {
                out.push_str(" xmlns=\"");
                escape_attr_into(&e.namespace, out);
                out.push('"');
            }
            let mut next_prefix = 0;
            for a in &e.attributes {
                out.push(' ');
                if a.namespace.is_empty() {
                    out.push_str(&a.local);
                } else if a.namespace == XML_NS {
                    out.push_str("xml:");
                    out.push_str(&a.local);
                } else {
                    let prefix = format!("a{next_prefix}");
                    next_prefix += 1;
                    out.push_str("xmlns:");
                    out.push_str(&prefix);
                    out.push_str("=\"");
                    escape_attr_into(&a.namespace, out);
                    out.push_str("\" ");
                    out.push_str(&prefix);
                    out.push(':');
                    out.push_str(&a.local);
                }
                out.push_str("=\"");
                escape_attr_into(&a.value, out);
                out.push('"');
            }
            if e.children.is_empty() {
                out.push_str("/>");
                return;
            }
            out.push('>');
            let inner_default = if in_xml { default_ns } else { &e.namespace };
            for c in &e.children {
                write_node(c, inner_default, out);
            }
            out.push_str("</");
            if in_xml {
                out.push_str("xml:");
            }
            out.push_str(&e.local);
            out.push('>');
        }
    }
}

/// Appends `n` in decimal; property values hold many numbers and `fmt` costs more than
/// the digits.
pub fn write_decimal(mut n: u64, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Appends `s` escaped for character data.
pub fn escape_text_into(s: &str, out: &mut String) {
    escape_into(s, out, |b| match b {
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'&' => Some("&amp;"),
        b'\r' => Some("&#13;"),
        _ => None,
    });
}

/// Appends `s` escaped for a double-quoted attribute value.
pub fn escape_attr_into(s: &str, out: &mut String) {
    escape_into(s, out, |b| match b {
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'&' => Some("&amp;"),
        b'"' => Some("&quot;"),
        b'\r' => Some("&#13;"),
        b'\n' => Some("&#10;"),
        b'\t' => Some("&#9;"),
        _ => None,
    });
}

/// Appends `s` with each byte that `rep` names replaced: runs without one are copied whole.
/// Characters XML 1.0 does not allow at all (§2.2: C0 controls but tab, line feed and
/// carriage return; U+FFFE and U+FFFF), which a name on disk may hold, become U+FFFD:
/// written as they are, they would make the whole document unreadable.
fn escape_into(s: &str, out: &mut String, rep: impl Fn(u8) -> Option<&'static str>) {
    const REPLACEMENT: &str = "\u{fffd}";
    let bytes = s.as_bytes();
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (r, len) = match b {
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                (Some(REPLACEMENT), 3)
            }
            0..0x20 if !matches!(b, b'\t' | b'\n' | b'\r') => (Some(REPLACEMENT), 1),
            _ => (rep(b), 1),
        };
        if let Some(r) = r {
            out.push_str(&s[last..i]);
            out.push_str(r);
            last = i + len;
        }
        i += len;
    }
    out.push_str(&s[last..]);
}

/// Parses a complete document into its root element.
///
/// # Errors
/// [`ParseError::Xml`] for malformed XML, [`ParseError::Refused`] for DTDs and documents past
/// `limits`.
pub fn parse_document(body: &[u8], limits: XmlLimits) -> Result<Element, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| ParseError::Xml {
        offset: e.valid_up_to() as u64,
        reason: "body is not UTF-8".to_owned(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // quick-xml leaves character legality to the caller; XML 1.0 §2.2 allows these only.
    if let Some(i) = text.find(|c: char| !is_xml_char(c)) {
        return Err(ParseError::Xml {
            offset: i as u64,
            reason: "a character XML does not allow".to_owned(),
        });
    }
    let mut reader = NsReader::from_str(text);
    reader.resolver_mut().set_max_namespace_bindings(1024);

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;

    loop {
        let offset = reader.buffer_position();
        let xml_err = |reason: String| ParseError::Xml { offset, reason };
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| xml_err(e.to_string()))?;
        match event {
            Event::Start(_) | Event::Empty(_) => {
                let (Event::Start(start) | Event::Empty(start)) = &event else {
                    unreachable!("matched above")
                };
                if root.is_some() {
                    return Err(xml_err("content after the root element".to_owned()));
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(ParseError::Refused("too many elements"));
                }
                if stack.len() >= limits.max_depth {
                    return Err(ParseError::Refused("elements nested too deeply"));
                }
                let namespace = resolved(ns).map_err(&xml_err)?;
                let mut lang = stack.last().and_then(|p| p.lang.clone());
                let mut attributes = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| xml_err(e.to_string()))?;
                    if attr.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let value = attr
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| xml_err(e.to_string()))?
                        .into_owned();
                    let (ans, local) = reader.resolver().resolve_attribute(attr.key);
                    let ans = resolved(ans).map_err(&xml_err)?;
                    check_name(local.as_ref()).map_err(&xml_err)?;
                    if ans == XML_NS && local.as_ref() == "lang" {
                        lang = Some(value.clone());
                    }
                    attributes.push(Attribute {
                        namespace: ans,
                        local: local.as_ref().to_owned(),
                        value,
                    });
                }
                // XML Namespaces §6.3: `a:y` and `b:y` are one attribute when `a` and `b`
                // name one namespace. Stored, such a value would make every listing of its
                // resource a document no namespace-aware client can read.
                if repeats_a_name(&attributes) {
                    return Err(xml_err(
                        "an attribute appears twice once its namespace is resolved".to_owned(),
                    ));
                }
                let local = start.local_name();
                check_name(local.as_ref()).map_err(&xml_err)?;
                let element = Element {
                    namespace,
                    local: local.as_ref().to_owned(),
                    attributes,
                    children: Vec::new(),
                    lang,
                };
                if matches!(event, Event::Start(_)) {
                    stack.push(element);
                } else {
                    close(element, &mut stack, &mut root);
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| xml_err("unmatched end tag".to_owned()))?;
                close(element, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let t = t.xml10_content();
                push_text(&mut stack, &t).map_err(xml_err)?;
            }
            Event::CData(c) => {
                let c = c.xml10_content();
                push_text(&mut stack, &c).map_err(xml_err)?;
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref().map_err(|e| xml_err(e.to_string()))? {
                    Some(ch) if is_xml_char(ch) => ch.to_string(),
                    Some(_) => {
                        return Err(xml_err(
                            "a character reference XML does not allow".to_owned(),
                        ));
                    }
                    None => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| xml_err(format!("undefined entity &{};", &*r)))?
                        .to_owned(),
                };
                push_text(&mut stack, &ch).map_err(xml_err)?;
            }
            Event::DocType(_) => return Err(ParseError::Dtd),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(xml_err("document ends inside an element".to_owned()));
                }
                return root.ok_or_else(|| xml_err("no root element".to_owned()));
            }
        }
    }
}

/// XML 1.0 `Char` (Rust strings hold no surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

/// A local name (an XML `NCName`, without the prefix): quick-xml accepts any bytes there.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid_first = chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || !c.is_ascii());
    let valid_rest =
        chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_') || !c.is_ascii());
    if valid_first && valid_rest {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid XML name"))
    }
}

fn resolved(ns: ResolveResult<'_>) -> Result<String, String> {
    match ns {
        ResolveResult::Bound(ns) => Ok(ns.as_ref().to_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(format!("unbound namespace prefix `{prefix}`")),
    }
}

fn close(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None => *root = Some(element),
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), String> {
    let Some(top) = stack.last_mut() else {
        return if text.trim().is_empty() {
            Ok(())
        } else {
            Err("text outside the root element".to_owned())
        };
    };
    if let Some(Node::Text(prev)) = top.children.last_mut() {
        prev.push_str(text);
    } else {
        top.children.push(Node::Text(text.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_xml_cannot_hold_are_replaced() {
        let mut text = String::new();
        escape_text_into("a\u{1}b\u{fffe}c\td\ne\u{ffff}<\u{1f}\r", &mut text);
        assert_eq!(text, "a\u{fffd}b\u{fffd}c\td\ne\u{fffd}&lt;\u{fffd}&#13;");
        let mut attr = String::new();
        escape_attr_into("\u{8}\t\u{fffd}\u{fffe}", &mut attr);
        assert_eq!(attr, "\u{fffd}&#9;\u{fffd}\u{fffd}");
    }

    #[test]
    fn decimal_matches_display() {
        for n in [0, 1, 9, 10, 4096, 1_000_000_007, u64::MAX] {
            let mut s = String::new();
            write_decimal(n, &mut s);
            assert_eq!(s, n.to_string());
        }
    }
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Element, ParseError> {
        parse_document(s.as_bytes(), XmlLimits::default())
    }

    #[test]
    fn resolves_namespaces_and_prefixes() {
        let e = parse(r#"<?xml version="1.0"?><ns0:propfind xmlns:ns0="DAV:"><prop xmlns="DAV:"><x xmlns=""/></prop></ns0:propfind>"#).unwrap();
        assert!(e.is("DAV:", "propfind"));
        let prop = e.elements().next().unwrap();
        assert!(prop.is("DAV:", "prop"));
        assert!(prop.elements().next().unwrap().is("", "x"));
    }

    #[test]
    fn refuses_hostile_and_malformed_documents() {
        let bad = [
            r#"<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>"#,
            r#"<X:foo/>"#,
            r#"<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#,
            r#"<x>&undefined;</x>"#,
            r#"<x></y>"#,
            r#"<x a="1" a="2"/>"#,
            r#"<x/><y/>"#,
            r#"<x>"#,
            "",
            "text",
            r#"<x/>trailing"#,
            "<>text</>",
            "< />",
            "<x>\u{0}</x>",
            "<x>\u{4}</x>",
            "<x>&#1;</x>",
            "<x a=\"\u{1}\"/>",
            "<1x/>",
            "<x 1a=\"v\"/>",
            "<a:b:c xmlns:a=\"urn:a\"/>",
            r#"<x xmlns:a="urn:n" xmlns:b="urn:n" a:y="1" b:y="2"/>"#,
            r#"<x xmlns:a="urn:n" a:y="1"><y xmlns:b="urn:n" b:z="1" a:z="2"/></x>"#,
        ];
        for b in bad {
            assert!(parse(b).is_err(), "accepted {b:?}");
        }
    }

    #[test]
    fn one_local_name_in_several_namespaces_is_several_attributes() {
        let doc = parse(r#"<x xmlns:a="urn:a" xmlns:b="urn:b" y="0" a:y="1" b:y="2"/>"#).unwrap();
        let names: Vec<_> = doc
            .attributes
            .iter()
            .map(|a| (a.namespace.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(names, [("", "0"), ("urn:a", "1"), ("urn:b", "2")]);
    }

    #[test]
    fn bounds_depth_and_element_count() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(
            parse(&deep),
            Err(ParseError::Refused("elements nested too deeply"))
        );
        let many = format!("<a>{}</a>", "<b/>".repeat(50));
        let limits = XmlLimits {
            max_depth: 8,
            max_elements: 10,
        };
        assert_eq!(
            parse_document(many.as_bytes(), limits),
            Err(ParseError::Refused("too many elements"))
        );
    }

    #[test]
    fn resolves_references_and_cdata() {
        let e = parse("<x>a&amp;b&#x41;&#66;<![CDATA[<c>]]></x>").unwrap();
        assert_eq!(e.text(), "a&bAB<c>");
    }

    #[test]
    fn inner_xml_is_self_contained() {
        let e = parse(r#"<p xmlns:t="urn:t" xml:lang="en"><t:a x="1" t:y="2">v&lt;</t:a><b xmlns="urn:b"><c xmlns=""/></b> txt</p>"#).unwrap();
        assert_eq!(e.lang.as_deref(), Some("en"));
        let inner = e.inner_xml();
        assert_eq!(
            inner,
            r#"<a xmlns="urn:t" x="1" xmlns:a0="urn:t" a0:y="2">v&lt;</a><b xmlns="urn:b"><c xmlns=""/></b> txt"#
        );
        // The fragment parses back to the same tree.
        let again = parse(&format!("<p xml:lang=\"en\">{inner}</p>")).unwrap();
        assert_eq!(again.children, e.children);
    }

    #[test]
    fn escapes_exactly_what_each_context_needs() {
        // (input, as character data, as an attribute value)
        let cases = [
            ("plain", "plain", "plain"),
            ("", "", ""),
            ("a<b>&c", "a&lt;b&gt;&amp;c", "a&lt;b&gt;&amp;c"),
            ("say \"hi\"", "say \"hi\"", "say &quot;hi&quot;"),
            ("l1\r\nl2\tend", "l1&#13;\nl2\tend", "l1&#13;&#10;l2&#9;end"),
            ("é<ü", "é&lt;ü", "é&lt;ü"),
            ("&&", "&amp;&amp;", "&amp;&amp;"),
        ];
        for (input, text, attr) in cases {
            let mut out = String::from("~");
            escape_text_into(input, &mut out);
            assert_eq!(out, format!("~{text}"), "text of {input:?}");
            let mut out = String::from("~");
            escape_attr_into(input, &mut out);
            assert_eq!(out, format!("~{attr}"), "attribute of {input:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_document(&body, XmlLimits::default());
        }

        #[test]
        fn never_panics_on_xmlish_text(body in "[<>/a-c:=\"' &;#x0-9!\\[\\]DOCTYPEN-]{0,80}") {
            let _ = parse(&body);
        }

        #[test]
        fn escaped_text_round_trips(text in "\\PC{0,40}") {
            let mut s = String::from("<x>");
            escape_text_into(&text, &mut s);
            s.push_str("</x>");
            let e = parse(&s).unwrap();
            prop_assert_eq!(e.text(), text);
        }
    }
}
