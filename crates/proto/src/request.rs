//! Request bodies: `propfind` (RFC 4918 §14.20) and `propertyupdate` (§14.19).

use crate::ParseError;
use crate::prop::{DAV_NS, PropName, PropOp, PropValue};
use crate::xml::{Element, XmlLimits, parse_document};

/// What a PROPFIND asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropFind {
    /// `<allprop/>` (or an empty body), plus the properties named in `<include>`.
    AllProp {
        /// Extra properties that allprop does not return by itself.
        include: Vec<PropName>,
    },
    /// `<propname/>`: the names of all properties, without values.
    PropName,
    /// `<prop>`: these properties.
    Prop(Vec<PropName>),
}

impl PropFind {
    /// Parses a `propfind` body. An empty body means allprop (RFC 4918 §9.1); the caller
    /// checks for emptiness before calling.
    ///
    /// # Errors
    /// [`ParseError`] if the body is not XML, is refused, or is not a valid `propfind`.
    pub fn from_xml(body: &[u8], limits: XmlLimits) -> Result<PropFind, ParseError> {
        let root = parse_document(body, limits)?;
        expect_root(&root, "propfind")?;
        let mut include = Vec::new();
        let mut found = None;
        for child in root.elements().filter(|e| e.namespace == DAV_NS) {
            match child.local.as_str() {
                "prop" if found.is_none() => {
                    found = Some(PropFind::Prop(child.elements().map(PropName::of).collect()))
                }
                "allprop" if found.is_none() => {
                    found = Some(PropFind::AllProp {
                        include: Vec::new(),
                    })
                }
                "propname" if found.is_none() => found = Some(PropFind::PropName),
                "include" => include.extend(child.elements().map(PropName::of)),
                "prop" | "allprop" | "propname" => {
                    return Err(ParseError::Body(
                        "propfind holds more than one of prop, allprop, propname".to_owned(),
                    ));
                }
                _ => {}
            }
        }
        match found {
            Some(PropFind::AllProp { .. }) => Ok(PropFind::AllProp { include }),
            Some(other) => Ok(other),
            None => Err(ParseError::Body(
                "propfind must hold prop, allprop or propname".to_owned(),
            )),
        }
    }
}

/// A PROPPATCH body: the set and remove instructions in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyUpdate {
    /// The instructions, in the order the server must apply them (RFC 4918 §9.2).
    pub ops: Vec<PropOp>,
}

impl PropertyUpdate {
    /// Parses a `propertyupdate` body.
    ///
    /// # Errors
    /// [`ParseError`] if the body is not XML, is refused, or is not a valid `propertyupdate`
    /// with at least one instruction.
    pub fn from_xml(body: &[u8], limits: XmlLimits) -> Result<PropertyUpdate, ParseError> {
        let root = parse_document(body, limits)?;
        expect_root(&root, "propertyupdate")?;
        let mut ops = Vec::new();
        for child in root.elements().filter(|e| e.namespace == DAV_NS) {
            let set = match child.local.as_str() {
                "set" => true,
                "remove" => false,
                _ => continue,
            };
            for prop in child.elements().filter(|e| e.is(DAV_NS, "prop")) {
                for p in prop.elements() {
                    ops.push(if set {
                        PropOp::Set(PropName::of(p), PropValue::of(p))
                    } else {
                        PropOp::Remove(PropName::of(p))
                    });
                }
            }
        }
        if ops.is_empty() {
            return Err(ParseError::Body(
                "propertyupdate holds no property to set or remove".to_owned(),
            ));
        }
        Ok(PropertyUpdate { ops })
    }
}

fn expect_root(root: &Element, local: &str) -> Result<(), ParseError> {
    if root.is(DAV_NS, local) {
        Ok(())
    } else {
        Err(ParseError::Body(format!(
            "expected DAV:{local}, found {{{}}}{}",
            root.namespace, root.local
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(s: &str) -> Result<PropFind, ParseError> {
        PropFind::from_xml(s.as_bytes(), XmlLimits::default())
    }

    #[test]
    fn propfind_table() {
        assert_eq!(
            pf(r#"<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#),
            Ok(PropFind::AllProp { include: vec![] })
        );
        assert_eq!(
            pf(r#"<propfind xmlns="DAV:"><propname/></propfind>"#),
            Ok(PropFind::PropName)
        );
        assert_eq!(
            pf(
                r#"<propfind xmlns="DAV:"><prop><getetag/><x:a xmlns:x="urn:x"/></prop></propfind>"#
            ),
            Ok(PropFind::Prop(vec![
                PropName::dav("getetag"),
                PropName::new("urn:x", "a")
            ]))
        );
        assert_eq!(
            pf(
                r#"<propfind xmlns="DAV:"><allprop/><include><x xmlns="urn:i"/></include></propfind>"#
            ),
            Ok(PropFind::AllProp {
                include: vec![PropName::new("urn:i", "x")]
            })
        );
        assert!(pf(r#"<propfind xmlns="DAV:"/>"#).is_err());
        assert!(pf(r#"<propfind xmlns="urn:not-dav"><allprop/></propfind>"#).is_err());
        assert!(pf(r#"<propfind xmlns="DAV:"><prop/><allprop/></propfind>"#).is_err());
        assert!(pf("<propfind xmlns=\"DAV:\"><foo/></propfind>").is_err());
    }

    #[test]
    fn propertyupdate_keeps_document_order() {
        let u = PropertyUpdate::from_xml(
            br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">
                <D:set><D:prop><Z:a>1</Z:a><Z:b><Z:c/></Z:b></D:prop></D:set>
                <D:remove><D:prop><Z:a/></D:prop></D:remove>
                <D:set><D:prop><Z:a>2</Z:a></D:prop></D:set>
            </D:propertyupdate>"#,
            XmlLimits::default(),
        )
        .unwrap();
        let a = PropName::new("urn:z", "a");
        assert_eq!(
            u.ops,
            vec![
                PropOp::Set(a.clone(), PropValue::text("1")),
                PropOp::Set(
                    PropName::new("urn:z", "b"),
                    PropValue {
                        xml: r#"<c xmlns="urn:z"/>"#.to_owned(),
                        lang: None
                    }
                ),
                PropOp::Remove(a.clone()),
                PropOp::Set(a, PropValue::text("2")),
            ]
        );
        assert!(
            PropertyUpdate::from_xml(br#"<propertyupdate xmlns="DAV:"/>"#, XmlLimits::default())
                .is_err()
        );
    }
}
