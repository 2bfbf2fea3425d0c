//! The `If` header grammar.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(h) = davit_proto::IfHeader::parse(s) {
            assert!(!h.lists.is_empty());
            assert!(h.lists.iter().all(|l| !l.conditions.is_empty()));
        }
    }
});
