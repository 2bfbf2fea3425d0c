//! Property names and values (RFC 4918 §4).

use crate::xml::{Element, escape_text_into};

/// The `DAV:` namespace.
pub const DAV_NS: &str = "DAV:";

/// A property name: a namespace URI and a local name (RFC 4918 §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropName {
    /// Namespace URI; empty for a property in no namespace.
    pub namespace: String,
    /// Local name.
    pub local: String,
}

impl PropName {
    /// `{namespace}local`.
    pub fn new(namespace: impl Into<String>, local: impl Into<String>) -> Self {
        PropName {
            namespace: namespace.into(),
            local: local.into(),
        }
    }

    /// `{DAV:}local`.
    pub fn dav(local: &str) -> Self {
        Self::new(DAV_NS, local)
    }

    /// True if this is `{DAV:}local`.
    pub fn is_dav(&self, local: &str) -> bool {
        self.namespace == DAV_NS && self.local == local
    }

    /// The name of an element.
    pub fn of(element: &Element) -> Self {
        Self::new(element.namespace.clone(), element.local.clone())
    }
}

/// A property value: a self-contained XML fragment (the content of the property element),
/// with the `xml:lang` in scope where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropValue {
    /// The content, as serialized by [`Element::inner_xml`]: it declares every namespace it
    /// uses, so it can be pasted into any response as it is.
    pub xml: String,
    /// The `xml:lang` in scope for the property element, if any.
    pub lang: Option<String>,
}

impl PropValue {
    /// The value held by a property element of a request body.
    pub fn of(element: &Element) -> Self {
        PropValue {
            xml: element.inner_xml(),
            lang: element.lang.clone(),
        }
    }

    /// A value that is plain text.
    pub fn text(text: &str) -> Self {
        let mut xml = String::with_capacity(text.len());
        escape_text_into(text, &mut xml);
        PropValue { xml, lang: None }
    }
}

/// One instruction of a PROPPATCH, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropOp {
    /// Set (create or replace) a property.
    Set(PropName, PropValue),
    /// Remove a property; removing one that does not exist is not an error.
    Remove(PropName),
}

impl PropOp {
    /// The property the instruction is about.
    pub fn name(&self) -> &PropName {
        match self {
            PropOp::Set(n, _) | PropOp::Remove(n) => n,
        }
    }
}
