//! Every XML request body parser: no input may panic, loop or blow up memory.
#![no_main]

use davit_proto::{LockInfo, PropFind, PropertyUpdate, XmlLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = XmlLimits::default();
    let _ = PropFind::from_xml(data, limits);
    let _ = PropertyUpdate::from_xml(data, limits);
    let _ = LockInfo::from_xml(data, limits);
    if let Ok(root) = davit_proto::xml::parse_document(data, limits) {
        // What the parser accepted must serialize to something it accepts again.
        let again = format!("<r>{}</r>", root.inner_xml());
        davit_proto::xml::parse_document(again.as_bytes(), limits).expect("re-parse");
    }
});
