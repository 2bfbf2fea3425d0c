//! HTTP/1.1 request heads and the chunked coding: never a panic, and what is accepted is
//! consistent with the bytes it came from.
#![no_main]

use bytes::BytesMut;
use davit_proto::h1::{ChunkedDecoder, Decoded, parse_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    if let Ok(Some(head)) = parse_head(&mut buf) {
        assert!(buf.len() < data.len(), "a head consumes bytes");
        assert!(data.ends_with(&buf), "what follows the head is left as sent");
        assert!(head.headers.len() <= davit_proto::h1::MAX_HEADERS);
    }

    // The chunked decoder, fed in two pieces cut where the first byte says.
    let cut = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let (first, second) = data.split_at(cut);
    let mut decoder = ChunkedDecoder::default();
    let mut buf = BytesMut::from(first);
    let mut decoded = 0usize;
    let mut fed_second = false;
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decoded::Data(d)) => {
                assert!(!d.is_empty());
                decoded += d.len();
            }
            Ok(Decoded::End) => {
                assert!(decoder.is_done());
                break;
            }
            Ok(Decoded::More) if !fed_second => {
                buf.extend_from_slice(second);
                fed_second = true;
            }
            Ok(Decoded::More) | Err(_) => break,
        }
    }
    assert!(decoded <= data.len());
});
