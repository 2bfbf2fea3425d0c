//! Live properties (RFC 4918 §15), computed from storage metadata, from one table.

use std::sync::LazyLock;
use std::time::SystemTime;

use davit_proto::xml::escape_text_into;
use davit_proto::{BasePath, DAV_NS, MultistatusWriter, PropName, ResourceKind, ResourcePath};
use davit_store::{Lock, Metadata, Space};

use crate::lock;

/// What a live property is computed from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resource<'a> {
    pub(crate) path: &'a ResourcePath,
    pub(crate) meta: &'a Metadata,
    /// The active locks that apply to the resource.
    pub(crate) locks: &'a [Lock],
    /// Now: what lock timeouts count from, and the latest modification date shown.
    pub(crate) now: SystemTime,
    /// Room on the storage, where the request asked for it.
    pub(crate) space: Option<Space>,
    /// Where the served tree sits in URLs.
    pub(crate) base: &'a BasePath,
    /// The server refuses changes: no lock can be taken.
    pub(crate) read_only: bool,
}

/// How a property's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `write` appends escaped text; the element around it comes from the name.
    Text,
    /// `write` appends the whole element (e.g. `resourcetype` with its children).
    Element,
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct LiveProp {
    /// Local name in `DAV:`.
    pub(crate) local: &'static str,
    /// Clients may set it with PROPPATCH; a stored (dead) value then wins over the computed
    /// one. RFC 4918 §15.2: displayname SHOULD NOT be protected.
    pub(crate) settable: bool,
    /// Listed by allprop. The quota properties are not (and only they need the storage's
    /// room, see [`needs_space`]): they cost a look at the whole filesystem, and RFC 4918
    /// §9.1 leaves properties of other specifications out.
    pub(crate) in_allprop: bool,
    /// Whether the property exists for a resource (getcontentlength of a collection does
    /// not, which reads as 404).
    pub(crate) applies: fn(Resource<'_>) -> bool,
    pub(crate) shape: Shape,
    /// Appends the value straight into the response buffer: no string per property and
    /// resource, which is what a listing of 10,000 files spends its time on.
    pub(crate) write: fn(Resource<'_>, &mut String),
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
        if !(self.applies)(res) {
            return false;
        }
        match self.shape {
            Shape::Text => w.prop_with(self.name(), |buf| (self.write)(res, buf)),
            Shape::Element => w.raw_with(|buf| (self.write)(res, buf)),
        }
        true
    }
}

fn always(_: Resource<'_>) -> bool {
    true
}

fn file_only(r: Resource<'_>) -> bool {
    !r.meta.kind.is_collection()
}

/// RFC 4331 §3-4: required on collections, optional on other resources; Davit gives them
/// on collections only, where the storage's room is known.
fn collection_with_space(r: Resource<'_>) -> bool {
    r.meta.kind.is_collection() && r.space.is_some()
}

/// Every live property Davit computes, in the order allprop lists them.
pub(crate) static LIVE_PROPS: &[LiveProp] = &[
    LiveProp {
        local: "resourcetype",
        settable: false,
        in_allprop: true,
        applies: always,
        shape: Shape::Element,
        write: |r, buf| {
            buf.push_str(if r.meta.kind.is_collection() {
                "<D:resourcetype><D:collection/></D:resourcetype>"
            } else {
                "<D:resourcetype/>"
            })
        },
    },
    LiveProp {
        local: "getcontentlength",
        settable: false,
        in_allprop: true,
        applies: file_only,
        shape: Shape::Text,
        write: |r, buf| davit_proto::write_decimal(r.meta.len, buf),
    },
    LiveProp {
        local: "getcontenttype",
        settable: false,
        in_allprop: true,
        applies: file_only,
        shape: Shape::Text,
        write: |r, buf| buf.push_str(content_type(r.path)),
    },
    LiveProp {
        local: "getetag",
        settable: false,
        in_allprop: true,
        applies: file_only,
        shape: Shape::Text,
        write: |r, buf| r.meta.etag.write_into(buf),
    },
    LiveProp {
        local: "getlastmodified",
        settable: false,
        in_allprop: true,
        applies: always,
        shape: Shape::Text,
        // As GET's Last-Modified says it (RFC 4918 §15.7): never later than now.
        write: |r, buf| davit_proto::write_http_date(r.meta.modified.min(r.now), buf),
    },
    LiveProp {
        local: "creationdate",
        settable: false,
        in_allprop: true,
        applies: always,
        shape: Shape::Text,
        write: |r, buf| davit_proto::write_rfc3339(r.meta.created.unwrap_or(r.meta.modified), buf),
    },
    LiveProp {
        local: "displayname",
        settable: true,
        in_allprop: true,
        applies: always,
        shape: Shape::Text,
        write: |r, buf| escape_text_into(r.path.name(), buf),
    },
    LiveProp {
        local: "supportedlock",
        settable: false,
        in_allprop: true,
        applies: always,
        shape: Shape::Element,
        write: |r, buf| {
            if r.read_only {
                // RFC 4918 §15.10: no lock can be taken here.
                return buf.push_str("<D:supportedlock/>");
            }
            buf.push_str(
                "<D:supportedlock>\
                 <D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
                 <D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
                 </D:supportedlock>",
            )
        },
    },
    LiveProp {
        local: "lockdiscovery",
        settable: false,
        in_allprop: true,
        applies: always,
        shape: Shape::Element,
        write: |r, buf| {
            if r.locks.is_empty() {
                return buf.push_str("<D:lockdiscovery/>");
            }
            buf.push_str("<D:lockdiscovery>");
            for l in r.locks {
                let root_kind = if l.root == *r.path {
                    r.meta.kind
                } else {
                    ResourceKind::Collection
                };
                lock::active(l, r.now, root_kind, r.base).write(buf);
            }
            buf.push_str("</D:lockdiscovery>");
        },
    },
    // The storage as a whole: Davit keeps no quota of its own, so what is left on the
    // filesystem is what a client can still write.
    LiveProp {
        local: "quota-available-bytes",
        settable: false,
        in_allprop: false,
        applies: collection_with_space,
        shape: Shape::Text,
        write: |r, buf| {
            if let Some(space) = r.space {
                davit_proto::write_decimal(space.available, buf);
            }
        },
    },
    LiveProp {
        local: "quota-used-bytes",
        settable: false,
        in_allprop: false,
        applies: collection_with_space,
        shape: Shape::Text,
        write: |r, buf| {
            if let Some(space) = r.space {
                davit_proto::write_decimal(space.used, buf);
            }
        },
    },
];

/// True for the properties computed from [`Resource::space`]: those allprop leaves out.
pub(crate) fn needs_space(name: &PropName) -> bool {
    find(name).is_some_and(|p| !p.in_allprop)
}

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
    const UNKNOWN: &str = "application/octet-stream";
    /// Extensions remembered per thread; a listing of odd names cannot grow it further.
    const REMEMBERED: usize = 256;
    thread_local! {
        // mime_guess searches a table of a thousand entries case-insensitively: per GET,
        // and per member of every PROPFIND listing, more than the rest of the lookup.
        // FNV, not SipHash: hashing a short extension took as long as the lookup itself,
        // and the table is too small (REMEMBERED) for colliding names to matter.
        static KNOWN: std::cell::RefCell<fnv::FnvHashMap<String, &'static str>> =
            std::cell::RefCell::default();
    }
    // As `Path::extension`: a leading dot starts a hidden name, not an extension.
    let Some((stem, ext)) = path.name().rsplit_once('.') else {
        return UNKNOWN;
    };
    if stem.is_empty() {
        return UNKNOWN;
    }
    KNOWN.with_borrow_mut(|known| {
        if let Some(t) = known.get(ext) {
            return *t;
        }
        let t = mime_guess::from_ext(ext).first_raw().unwrap_or(UNKNOWN);
        if known.len() < REMEMBERED {
            known.insert(ext.to_owned(), t);
        }
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_match_mime_guess_twice_over() {
        for name in [
            "a.txt",
            "b.HTML",
            "c.tar.gz",
            "noext",
            ".hidden",
            "d.",
            "e.unknownext",
            "f.PNG",
        ] {
            let path = ResourcePath::parse(&format!("/{name}")).unwrap();
            let want = mime_guess::from_path(name)
                .first_raw()
                .unwrap_or("application/octet-stream");
            // The second answer comes from the remembered extensions.
            assert_eq!(content_type(&path), want, "{name}");
            assert_eq!(content_type(&path), want, "{name}");
        }
    }

    #[test]
    fn protection_table() {
        assert!(is_protected(&PropName::dav("getetag")));
        assert!(is_protected(&PropName::dav("resourcetype")));
        assert!(!is_protected(&PropName::dav("displayname")));
        assert!(!is_protected(&PropName::dav("unknown")));
        assert!(!is_protected(&PropName::new("urn:x", "getetag")));
    }
}
