//! Request bodies the client sends, and the LOCK answer it reads.

use davit_proto::xml::{XmlLimits, escape_attr_into, parse_document};
use davit_proto::{DAV_NS, LockScope, PropName, PropOp};

use crate::{LockInfo, PropRequest};

const DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// `<P:local xmlns:P="ns">` (or `<local xmlns="">`), then `inner`, then the end tag.
fn element(out: &mut String, name: &PropName, inner: Option<&str>) {
    let (open, close) = if name.namespace.is_empty() {
        (format!("{} xmlns=\"\"", name.local), name.local.clone())
    } else {
        let mut ns = String::new();
        escape_attr_into(&name.namespace, &mut ns);
        (
            format!("P:{} xmlns:P=\"{ns}\"", name.local),
            format!("P:{}", name.local),
        )
    };
    match inner {
        None => out.push_str(&format!("<{open}/>")),
        Some(xml) => out.push_str(&format!("<{open}>{xml}</{close}>")),
    }
}

pub(crate) fn propfind(props: &PropRequest) -> String {
    let mut out = format!("{DECL}<D:propfind xmlns:D=\"DAV:\">");
    match props {
        PropRequest::AllProp => out.push_str("<D:allprop/>"),
        PropRequest::PropName => out.push_str("<D:propname/>"),
        PropRequest::Props(names) => {
            out.push_str("<D:prop>");
            for n in names {
                element(&mut out, n, None);
            }
            out.push_str("</D:prop>");
        }
    }
    out.push_str("</D:propfind>");
    out
}

pub(crate) fn propertyupdate(ops: &[PropOp]) -> String {
    let mut out = format!("{DECL}<D:propertyupdate xmlns:D=\"DAV:\">");
    for op in ops {
        match op {
            PropOp::Set(name, value) => {
                out.push_str("<D:set><D:prop>");
                element(&mut out, name, Some(&value.xml));
                out.push_str("</D:prop></D:set>");
            }
            PropOp::Remove(name) => {
                out.push_str("<D:remove><D:prop>");
                element(&mut out, name, None);
                out.push_str("</D:prop></D:remove>");
            }
        }
    }
    out.push_str("</D:propertyupdate>");
    out
}

pub(crate) fn lockinfo(scope: LockScope, owner: Option<&str>) -> String {
    let mut out = format!(
        "{DECL}<D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:{}/></D:lockscope><D:locktype><D:write/></D:locktype>",
        scope.as_str()
    );
    if let Some(owner) = owner {
        out.push_str("<D:owner>");
        davit_proto::xml::escape_text_into(owner, &mut out);
        out.push_str("</D:owner>");
    }
    out.push_str("</D:lockinfo>");
    out
}

/// The granted lock as the LOCK answer's `lockdiscovery` shows it; `asked` where the body
/// does not show it. RFC 4918 §9.10.1 makes the body say it, but the `Lock-Token` header is
/// what unlocks: failing here would leave the lock held with its token unknown.
pub(crate) fn lock_info(body: &[u8], asked: LockInfo) -> LockInfo {
    let Ok(root) = parse_document(body, XmlLimits::default()) else {
        return asked;
    };
    let Some(discovery) = root.elements().find(|e| e.is(DAV_NS, "lockdiscovery")) else {
        return asked;
    };
    for active in discovery.elements().filter(|e| e.is(DAV_NS, "activelock")) {
        let child = |local: &str| active.elements().find(|e| e.is(DAV_NS, local));
        let this_token = child("locktoken")
            .and_then(|t| t.elements().find(|e| e.is(DAV_NS, "href")))
            .map(|h| h.text().trim().to_owned());
        if this_token.as_deref() != Some(asked.token.as_str()) {
            continue;
        }
        let scope = child("lockscope")
            .and_then(|s| s.elements().find_map(|e| LockScope::from_name(&e.local)))
            .unwrap_or(asked.scope);
        let depth = child("depth").map_or(asked.depth.clone(), |d| d.text().trim().to_owned());
        let timeout = child("timeout").and_then(|t| {
            let t = t.text();
            t.trim()
                .strip_prefix("Second-")
                .and_then(|s| s.parse().ok())
        });
        return LockInfo {
            scope,
            depth,
            timeout,
            ..asked
        };
    }
    asked
}

#[cfg(test)]
mod tests {
    use super::*;
    use davit_proto::{PropFind, PropValue, PropertyUpdate};

    #[test]
    fn a_lock_answer_that_does_not_show_the_lock_still_gives_its_token() {
        let asked = || LockInfo {
            token: "urn:uuid:1".to_owned(),
            scope: LockScope::Shared,
            depth: "0".to_owned(),
            timeout: Some(60),
        };
        for body in [
            "",
            "not xml",
            r#"<D:prop xmlns:D="DAV:"/>"#,
            r#"<D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock><D:depth>0</D:depth></D:activelock></D:lockdiscovery></D:prop>"#,
        ] {
            assert_eq!(lock_info(body.as_bytes(), asked()), asked(), "{body}");
        }
        let shown = r#"<D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock>
            <D:lockscope><D:exclusive/></D:lockscope><D:depth>infinity</D:depth>
            <D:timeout>Second-30</D:timeout>
            <D:locktoken><D:href>urn:uuid:1</D:href></D:locktoken>
            </D:activelock></D:lockdiscovery></D:prop>"#;
        let got = lock_info(shown.as_bytes(), asked());
        assert_eq!(got.scope, LockScope::Exclusive);
        assert_eq!((got.depth.as_str(), got.timeout), ("infinity", Some(30)));
    }

    #[test]
    fn bodies_parse_back() {
        let names = vec![
            PropName::dav("getetag"),
            PropName::new("urn:x", "a"),
            PropName::new("", "bare"),
        ];
        let body = propfind(&PropRequest::Props(names.clone()));
        assert_eq!(
            PropFind::from_xml(body.as_bytes(), XmlLimits::default()).unwrap(),
            PropFind::Prop(names)
        );
        let ops = vec![
            PropOp::Set(PropName::new("urn:x", "a"), PropValue::text("1 < 2")),
            PropOp::Remove(PropName::new("", "bare")),
        ];
        let body = propertyupdate(&ops);
        assert_eq!(
            PropertyUpdate::from_xml(body.as_bytes(), XmlLimits::default())
                .unwrap()
                .ops,
            ops
        );
        let body = lockinfo(LockScope::Shared, Some("me & you"));
        let info = davit_proto::LockInfo::from_xml(body.as_bytes(), XmlLimits::default()).unwrap();
        assert_eq!(info.scope, LockScope::Shared);
        assert_eq!(info.owner.as_deref(), Some("me &amp; you"));
    }
}
