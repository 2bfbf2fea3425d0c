//! Live properties (RFC 4918 §15), computed from storage metadata, from one table.

use std::sync::LazyLock;
use std::time::SystemTime;

use davit_proto::{DAV_NS, MultistatusWriter, PropName, ResourceKind, ResourcePath};
use davit_store::{Lock, Metadata};

use crate::lock;

/// What a live property is computed from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resource<'a> {
    pub(crate) path: &'a ResourcePath,
    pub(crate) meta: &'a Metadata,
    /// The active locks that apply to the resource.
    pub(crate) locks: &'a [Lock],
    /// The time lock timeouts count from.
    pub(crate) now: SystemTime,
}

/// A computed value.
#[derive(Debug)]
pub(crate) enum LiveValue {
    /// Text, escaped when written.
    Text(String),
    /// The whole property element, already XML (e.g. `resourcetype`).
    Element(&'static str),
    /// The whole property element, already XML, built for this resource.
    OwnedElement(String),
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct LiveProp {
    /// Local name in `DAV:`.
    pub(crate) local: &'static str,
    /// Clients may set it with PROPPATCH; a stored (dead) value then wins over the computed
    /// one. RFC 4918 §15.2: displayname SHOULD NOT be protected.
    pub(crate) settable: bool,
    /// The value for a resource, or `None` where the property does not apply (e.g.
    /// getcontentlength of a collection), which reads as 404.
    pub(crate) value: fn(Resource<'_>) -> Option<LiveValue>,
}

impl LiveProp {
    /// The property's name.
    pub(crate) fn name(&'static self) -> &'static PropName {
        let i = LIVE_PROPS
            .iter()
            .position(|p| std::ptr::eq(p, self))
            .expect("rows come from LIVE_PROPS");
        &LIVE_NAMES[i]
    }

    /// Writes the property for `res`; false if it does not apply.
    pub(crate) fn write(&'static self, res: Resource<'_>, w: &mut MultistatusWriter) -> bool {
        match (self.value)(res) {
            Some(LiveValue::Text(t)) => w.prop_text(self.name(), &t),
            Some(LiveValue::Element(xml)) => w.raw(xml),
            Some(LiveValue::OwnedElement(xml)) => w.raw(&xml),
            None => return false,
        }
        true
    }
}

fn file_only(r: Resource<'_>, f: impl FnOnce() -> String) -> Option<LiveValue> {
    (!r.meta.kind.is_collection()).then(|| LiveValue::Text(f()))
}

/// Every live property Davit computes, in the order allprop lists them.
pub(crate) static LIVE_PROPS: &[LiveProp] = &[
    LiveProp {
        local: "resourcetype",
        settable: false,
        value: |r| {
            Some(LiveValue::Element(if r.meta.kind.is_collection() {
                "<D:resourcetype><D:collection/></D:resourcetype>"
            } else {
                "<D:resourcetype/>"
            }))
        },
    },
    LiveProp {
        local: "getcontentlength",
        settable: false,
        value: |r| file_only(r, || r.meta.len.to_string()),
    },
    LiveProp {
        local: "getcontenttype",
        settable: false,
        value: |r| file_only(r, || content_type(r.path).to_owned()),
    },
    LiveProp {
        local: "getetag",
        settable: false,
        value: |r| file_only(r, || r.meta.etag.to_string()),
    },
    LiveProp {
        local: "getlastmodified",
        settable: false,
        value: |r| Some(LiveValue::Text(httpdate::fmt_http_date(r.meta.modified))),
    },
    LiveProp {
        local: "creationdate",
        settable: false,
        value: |r| {
            Some(LiveValue::Text(davit_proto::rfc3339(
                r.meta.created.unwrap_or(r.meta.modified),
            )))
        },
    },
    LiveProp {
        local: "displayname",
        settable: true,
        value: |r| Some(LiveValue::Text(r.path.name().to_owned())),
    },
    LiveProp {
        local: "supportedlock",
        settable: false,
        value: |_| {
            Some(LiveValue::Element(
                "<D:supportedlock>\
                 <D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
                 <D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
                 </D:supportedlock>",
            ))
        },
    },
    LiveProp {
        local: "lockdiscovery",
        settable: false,
        value: |r| {
            if r.locks.is_empty() {
                return Some(LiveValue::Element("<D:lockdiscovery/>"));
            }
            let mut xml = String::from("<D:lockdiscovery>");
            for l in r.locks {
                let root_kind = if l.root == *r.path {
                    r.meta.kind
                } else {
                    ResourceKind::Collection
                };
                lock::active(l, r.now, root_kind).write(&mut xml);
            }
            xml.push_str("</D:lockdiscovery>");
            Some(LiveValue::OwnedElement(xml))
        },
    },
];

/// The names of [`LIVE_PROPS`], row for row.
static LIVE_NAMES: LazyLock<Vec<PropName>> =
    LazyLock::new(|| LIVE_PROPS.iter().map(|p| PropName::dav(p.local)).collect());

/// The live property named `name`, if Davit computes one.
pub(crate) fn find(name: &PropName) -> Option<&'static LiveProp> {
    if name.namespace != DAV_NS {
        return None;
    }
    LIVE_PROPS.iter().find(|p| p.local == name.local)
}

/// True if PROPPATCH may not change `name` (RFC 4918 §9.2: 403 for protected properties).
pub(crate) fn is_protected(name: &PropName) -> bool {
    find(name).is_some_and(|p| !p.settable)
}

/// The media type served for a resource, from its name.
pub(crate) fn content_type(path: &ResourcePath) -> &'static str {
    mime_guess::from_path(path.name())
        .first_raw()
        .unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_table() {
        assert!(is_protected(&PropName::dav("getetag")));
        assert!(is_protected(&PropName::dav("resourcetype")));
        assert!(!is_protected(&PropName::dav("displayname")));
        assert!(!is_protected(&PropName::dav("unknown")));
        assert!(!is_protected(&PropName::new("urn:x", "getetag")));
    }
}
