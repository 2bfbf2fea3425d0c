//! The `multistatus` writer (RFC 4918 §13, §14.16) and `DAV:error` conditions (§16).
//!
//! The writer appends straight into a text buffer, escaping once, so a server can stream a
//! 207 by taking the buffer whenever it has grown past a chunk size.

use bytes::Bytes;

use crate::path::{BasePath, ResourceKind, ResourcePath};
use crate::prop::{DAV_NS, PropName};
use crate::xml::escape_text_into;

/// A precondition or postcondition code of RFC 4918 §16, sent in a `DAV:error` body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// `lock-token-matches-request-uri` (UNLOCK with a token of another resource).
    LockTokenMatchesRequestUri,
    /// `lock-token-submitted`, with the hrefs of the locked resources.
    LockTokenSubmitted(Vec<String>),
    /// `no-conflicting-lock`, with the hrefs of the roots of conflicting locks.
    NoConflictingLock(Vec<String>),
    /// `no-external-entities` (a body used external entities or a DTD).
    NoExternalEntities,
    /// `preserved-live-properties` (COPY/MOVE could not keep live properties).
    PreservedLiveProperties,
    /// `propfind-finite-depth` (Depth: infinity PROPFIND refused).
    PropfindFiniteDepth,
    /// `cannot-modify-protected-property` (PROPPATCH of a protected property).
    CannotModifyProtectedProperty,
}

impl Condition {
    fn write(&self, out: &mut String) {
        let (name, hrefs) = match self {
            Condition::LockTokenMatchesRequestUri => ("lock-token-matches-request-uri", None),
            Condition::LockTokenSubmitted(h) => ("lock-token-submitted", Some(h)),
            Condition::NoConflictingLock(h) => ("no-conflicting-lock", Some(h)),
            Condition::NoExternalEntities => ("no-external-entities", None),
            Condition::PreservedLiveProperties => ("preserved-live-properties", None),
            Condition::PropfindFiniteDepth => ("propfind-finite-depth", None),
            Condition::CannotModifyProtectedProperty => ("cannot-modify-protected-property", None),
        };
        out.push_str("<D:");
        out.push_str(name);
        match hrefs {
            Some(hrefs) if !hrefs.is_empty() => {
                out.push('>');
                for h in hrefs {
                    out.push_str("<D:href>");
                    escape_text_into(h, out);
                    out.push_str("</D:href>");
                }
                out.push_str("</D:");
                out.push_str(name);
                out.push('>');
            }
            _ => out.push_str("/>"),
        }
    }

    /// A complete `DAV:error` document holding this condition.
    pub fn to_error_body(&self) -> String {
        let mut out = String::from(XML_DECL);
        out.push_str("<D:error xmlns:D=\"DAV:\">");
        self.write(&mut out);
        out.push_str("</D:error>\n");
        out
    }
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// The reason phrase for the status codes WebDAV uses in `DAV:status` lines.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        207 => "Multi-Status",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        423 => "Locked",
        424 => "Failed Dependency",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// Writes a `multistatus` document piece by piece.
///
/// Call order: [`begin_response`](Self::begin_response), then for each group of properties
/// [`begin_propstat`](Self::begin_propstat), the `prop_*` calls and
/// [`end_propstat`](Self::end_propstat), then [`end_response`](Self::end_response); or
/// [`status_response`](Self::status_response) alone. [`finish`](Self::finish) closes the
/// document. [`take`](Self::take) hands over what has been written so far.
#[derive(Debug)]
pub struct MultistatusWriter {
    buf: String,
    /// What every href starts with: [`BasePath::prefix`].
    prefix: String,
    /// Hrefs of resources at or below the first path are written at or below the second.
    respelled: Option<(ResourcePath, ResourcePath)>,
}

impl Default for MultistatusWriter {
    fn default() -> Self {
        Self::new(&BasePath::default())
    }
}

impl MultistatusWriter {
    /// Starts a document whose hrefs lie under `base`.
    pub fn new(base: &BasePath) -> Self {
        let mut buf = String::with_capacity(16 * 1024);
        buf.push_str(XML_DECL);
        buf.push_str("<D:multistatus xmlns:D=\"DAV:\">");
        MultistatusWriter {
            buf,
            prefix: base.prefix().to_owned(),
            respelled: None,
        }
    }

    /// Writes the hrefs of `found` and what lies below it as if at `sent`: the resource
    /// as the client named it, where that differs from how it is stored (Unicode spelled
    /// another way), so that a client finds the entry of what it asked for.
    pub fn respell(&mut self, found: ResourcePath, sent: ResourcePath) {
        self.respelled = Some((found, sent));
    }

    /// A `response` that carries only a status (and optionally a condition and a
    /// description), as DELETE, COPY and MOVE report failed members.
    pub fn status_response(
        &mut self,
        path: &ResourcePath,
        kind: ResourceKind,
        status: u16,
        condition: Option<&Condition>,
        description: Option<&str>,
    ) {
        self.open_response(path, kind);
        self.status_line(status);
        if let Some(c) = condition {
            self.buf.push_str("<D:error>");
            c.write(&mut self.buf);
            self.buf.push_str("</D:error>");
        }
        self.description(description);
        self.buf.push_str("</D:response>");
    }

    /// Opens a `response` for properties.
    pub fn begin_response(&mut self, path: &ResourcePath, kind: ResourceKind) {
        self.open_response(path, kind);
    }

    fn open_response(&mut self, path: &ResourcePath, kind: ResourceKind) {
        self.buf.push_str("<D:response><D:href>");
        self.buf.push_str(&self.prefix);
        let rebased = self
            .respelled
            .as_ref()
            .and_then(|(found, sent)| path.rebase(found, sent));
        rebased
            .as_ref()
            .unwrap_or(path)
            .write_href(kind, &mut self.buf);
        self.buf.push_str("</D:href>");
    }

    /// Opens a `propstat` and its `prop`.
    pub fn begin_propstat(&mut self) {
        self.buf.push_str("<D:propstat><D:prop>");
    }

    /// An empty property element (a name only, or a property whose value is empty).
    pub fn prop_empty(&mut self, name: &PropName) {
        self.open_prop(name, None);
        self.buf.truncate(self.buf.len() - 1);
        self.buf.push_str("/>");
    }

    /// A property whose value is `text`, escaped here.
    pub fn prop_text(&mut self, name: &PropName, text: &str) {
        self.open_prop(name, None);
        escape_text_into(text, &mut self.buf);
        self.close_prop(name);
    }

    /// A property whose value is the XML fragment `xml` (well-formed and self-contained,
    /// as [`crate::PropValue`] holds it), with an optional `xml:lang`.
    pub fn prop_xml(&mut self, name: &PropName, xml: &str, lang: Option<&str>) {
        if xml.is_empty() && lang.is_none() {
            return self.prop_empty(name);
        }
        self.open_prop(name, lang);
        self.buf.push_str(xml);
        self.close_prop(name);
    }

    /// Appends already-escaped XML inside the current `prop`, for live properties that
    /// write their own element (e.g. `resourcetype`).
    pub fn raw(&mut self, xml: &str) {
        self.buf.push_str(xml);
    }

    /// Lets `write` append a whole property element (well-formed XML, `D` bound to `DAV:`)
    /// straight into the buffer.
    pub fn raw_with(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.buf);
    }

    /// A property whose content `write` appends straight into the buffer, already escaped
    /// (no intermediate string for numbers and dates).
    pub fn prop_with(&mut self, name: &PropName, write: impl FnOnce(&mut String)) {
        self.open_prop(name, None);
        write(&mut self.buf);
        self.close_prop(name);
    }

    fn open_prop(&mut self, name: &PropName, lang: Option<&str>) {
        self.buf.push('<');
        if name.namespace == DAV_NS {
            self.buf.push_str("D:");
            self.buf.push_str(&name.local);
        } else if name.namespace.is_empty() {
            self.buf.push_str(&name.local);
        } else if name.namespace == crate::xml::XML_NS {
            // Bound to its prefix; declaring it otherwise is forbidden (Namespaces in XML §3).
            self.buf.push_str("xml:");
            self.buf.push_str(&name.local);
        } else {
            self.buf.push_str("P:");
            self.buf.push_str(&name.local);
            self.buf.push_str(" xmlns:P=\"");
            crate::xml::escape_attr_into(&name.namespace, &mut self.buf);
            self.buf.push('"');
        }
        if let Some(lang) = lang {
            self.buf.push_str(" xml:lang=\"");
            crate::xml::escape_attr_into(lang, &mut self.buf);
            self.buf.push('"');
        }
        self.buf.push('>');
    }

    fn close_prop(&mut self, name: &PropName) {
        self.buf.push_str("</");
        if name.namespace == DAV_NS {
            self.buf.push_str("D:");
        } else if name.namespace == crate::xml::XML_NS {
            self.buf.push_str("xml:");
        } else if !name.namespace.is_empty() {
            self.buf.push_str("P:");
        }
        self.buf.push_str(&name.local);
        self.buf.push('>');
    }

    /// Closes the `prop`, writes the status of this group and closes the `propstat`.
    pub fn end_propstat(&mut self, status: u16, condition: Option<&Condition>) {
        self.buf.push_str("</D:prop>");
        self.status_line(status);
        if let Some(c) = condition {
            self.buf.push_str("<D:error>");
            c.write(&mut self.buf);
            self.buf.push_str("</D:error>");
        }
        self.buf.push_str("</D:propstat>");
    }

    /// Closes a `response` opened with [`begin_response`](Self::begin_response).
    pub fn end_response(&mut self, description: Option<&str>) {
        self.description(description);
        self.buf.push_str("</D:response>");
    }

    /// Closes the document.
    pub fn finish(&mut self) {
        self.buf.push_str("</D:multistatus>\n");
    }

    fn status_line(&mut self, status: u16) {
        self.buf.push_str("<D:status>HTTP/1.1 ");
        crate::xml::write_decimal(u64::from(status), &mut self.buf);
        self.buf.push(' ');
        self.buf.push_str(reason_phrase(status));
        self.buf.push_str("</D:status>");
    }

    fn description(&mut self, description: Option<&str>) {
        if let Some(d) = description {
            self.buf.push_str("<D:responsedescription>");
            escape_text_into(d, &mut self.buf);
            self.buf.push_str("</D:responsedescription>");
        }
    }

    /// A position to [`rollback`](Self::rollback) to, e.g. to drop a `propstat` that
    /// turned out to hold no property.
    pub fn mark(&self) -> usize {
        self.buf.len()
    }

    /// Drops everything written since `mark` (which must come from [`mark`](Self::mark)
    /// with no [`take`](Self::take) in between).
    pub fn rollback(&mut self, mark: usize) {
        self.buf.truncate(mark);
    }

    /// Bytes written and not yet taken.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Hands over what has been written so far.
    pub fn take(&mut self) -> Bytes {
        let cap = self.buf.capacity().max(1024);
        Bytes::from(std::mem::replace(&mut self.buf, String::with_capacity(cap)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{XmlLimits, parse_document};

    #[test]
    fn writes_a_well_formed_document() {
        let mut w = MultistatusWriter::new(&BasePath::new(ResourcePath::parse("/d&v").unwrap()));
        let p = ResourcePath::parse("/a%20b/c&d").unwrap();
        w.begin_response(&p, ResourceKind::Collection);
        w.begin_propstat();
        w.prop_text(&PropName::dav("displayname"), "c&d <x>");
        w.prop_xml(
            &PropName::new("urn:x", "v"),
            r#"<q xmlns="urn:q">1</q>"#,
            Some("en"),
        );
        w.prop_empty(&PropName::new("", "nons"));
        w.end_propstat(200, None);
        w.begin_propstat();
        w.prop_empty(&PropName::new("urn:y", "missing"));
        w.end_propstat(404, None);
        w.end_response(None);
        w.status_response(
            &ResourcePath::parse("/locked").unwrap(),
            ResourceKind::File,
            423,
            Some(&Condition::LockTokenSubmitted(vec!["/locked".into()])),
            Some("locked"),
        );
        w.finish();
        let body = w.take();
        let doc = parse_document(&body, XmlLimits::default()).unwrap();
        assert!(doc.is("DAV:", "multistatus"));
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains("<D:href>/d%26v/a%20b/c%26d/</D:href>"),
            "{text}"
        );
        assert!(text.contains("<D:status>HTTP/1.1 404 Not Found</D:status>"));
        assert!(
            text.contains("<P:v xmlns:P=\"urn:x\" xml:lang=\"en\"><q xmlns=\"urn:q\">1</q></P:v>")
        );
        assert!(text.contains("<nons/>"));
    }

    #[test]
    fn respelled_hrefs_follow_the_spelling_asked_for() {
        let path = |s: &str| ResourcePath::from_decoded(s).unwrap();
        let mut w = MultistatusWriter::default();
        w.respell(path("/Cafe\u{301}"), path("/Caf\u{e9}"));
        for (p, kind) in [
            ("/Cafe\u{301}", ResourceKind::Collection),
            ("/Cafe\u{301}/x", ResourceKind::File),
            ("/Cafe\u{301}x", ResourceKind::File),
        ] {
            w.status_response(&path(p), kind, 200, None, None);
        }
        let body = String::from_utf8(w.take().to_vec()).unwrap();
        let hrefs: Vec<&str> = body
            .split("<D:href>")
            .skip(1)
            .filter_map(|h| h.split("</D:href>").next())
            .collect();
        // Below the respelled path only: a sibling that merely starts the same is kept.
        assert_eq!(hrefs, ["/Caf%C3%A9/", "/Caf%C3%A9/x", "/Cafe%CC%81x"]);
    }

    #[test]
    fn error_body_names_the_condition() {
        let body = Condition::PropfindFiniteDepth.to_error_body();
        let doc = parse_document(body.as_bytes(), XmlLimits::default()).unwrap();
        assert!(doc.is("DAV:", "error"));
        assert!(
            doc.elements()
                .next()
                .unwrap()
                .is("DAV:", "propfind-finite-depth")
        );
    }
}
