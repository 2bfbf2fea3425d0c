//! `Destination`, `Range`, `Timeout`, `Depth`, `Overwrite`, `Lock-Token`, entity tags and
//! Digest credentials.
#![no_main]

use davit_proto::{Depth, Destination, ETagList, Overwrite, RangeRequest, Timeout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = Destination::parse(s) {
        assert!(d.path.as_str().starts_with('/'));
    }
    if let Ok(specs) = davit_proto::parse_range(s) {
        for len in [0, 1, 100, u64::MAX] {
            if let RangeRequest::Partial(r) = davit_proto::resolve_range(&specs, len) {
                assert!(r.start < r.end && r.end <= len);
            }
        }
    }
    let _ = Timeout::parse(s);
    let _ = Depth::parse(Some(s), Depth::Infinity);
    let _ = Overwrite::parse(Some(s));
    let _ = davit_proto::parse_lock_token(s);
    let _ = ETagList::parse(s);
    let _ = davit_proto::DigestCredentials::parse(s);
    let _ = davit_proto::DigestChallenge::parse(s);
});
