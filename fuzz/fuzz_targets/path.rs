//! Request paths: whatever is accepted stays below the root, and its href decodes back to it.
#![no_main]

use davit_proto::{ResourceKind, ResourcePath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = ResourcePath::parse(s) {
        assert!(
            p.segments()
                .all(|seg| seg != ".." && seg != "." && !seg.contains('/'))
        );
        let href = p.to_href(ResourceKind::File);
        assert_eq!(
            ResourcePath::parse(href.as_str()).expect("own href parses"),
            p
        );
    }
});
