//! The pure functions every request runs through: the HTTP/1.1 request head and chunked
//! coding (every request, every chunked upload), the multistatus writer (PROPFIND's cost
//! per member), body parsing (every PROPFIND, PROPPATCH and LOCK) and the `If` header
//! (every locked write). `cargo bench -p davit-proto`.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use davit_proto::{
    ETag, IfHeader, IfTest, LockInfo, MultistatusWriter, PropFind, PropName, PropertyUpdate,
    ResourceKind, ResourcePath, XmlLimits, write_rfc3339,
};

/// A Depth:1 PROPFIND answer in the shape the server writes: per member, the live
/// properties a file manager asks for, one of them missing (a second propstat).
fn multistatus(c: &mut Criterion) {
    let members: Vec<ResourcePath> = (0..1000)
        .map(|i| ResourcePath::parse(&format!("/photos/2026/img %20{i:05}.jpg")).unwrap())
        .collect();
    let length = PropName::dav("getcontentlength");
    let modified = PropName::dav("getlastmodified");
    let created = PropName::dav("creationdate");
    let etag = PropName::dav("getetag");
    let missing = PropName::new("urn:example", "rating");
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let mut group = c.benchmark_group("multistatus");
    group.throughput(Throughput::Elements(members.len() as u64));
    group.bench_function("1000 members, 5 props", |b| {
        b.iter(|| {
            let mut w = MultistatusWriter::default();
            for (i, path) in members.iter().enumerate() {
                w.begin_response(path, ResourceKind::File);
                w.begin_propstat();
                w.raw("<D:resourcetype/>");
                w.prop_with(&length, |out| {
                    davit_proto::write_decimal(i as u64 * 4096, out);
                });
                w.prop_with(&modified, |out| davit_proto::write_http_date(when, out));
                w.prop_with(&created, |out| write_rfc3339(when, out));
                w.prop_text(&etag, "\"5f3a-1790000000\"");
                w.end_propstat(200, None);
                w.begin_propstat();
                w.prop_empty(&missing);
                w.end_propstat(404, None);
                w.end_response(None);
            }
            w.finish();
            black_box(w.take())
        });
    });
    group.finish();
}

fn bodies(c: &mut Criterion) {
    let limits = XmlLimits::default();
    let propfind_prop = br#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/>
<D:getlastmodified/><D:getetag/><D:creationdate/><D:displayname/></D:prop></D:propfind>"#;
    let propfind_allprop = br#"<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>"#;
    let proppatch = br#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:">
<D:set><D:prop><Z:Win32CreationTime>Mon, 23 Nov 2026 03:17:55 GMT</Z:Win32CreationTime>
<Z:Win32LastAccessTime>Mon, 23 Nov 2026 03:17:55 GMT</Z:Win32LastAccessTime>
<Z:Win32LastModifiedTime>Mon, 23 Nov 2026 03:17:55 GMT</Z:Win32LastModifiedTime>
<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set>
<D:remove><D:prop><Z:obsolete/></D:prop></D:remove></D:propertyupdate>"#;
    let lockinfo = br#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>
<D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:ana@example.org</D:href></D:owner>
</D:lockinfo>"#;
    let mut group = c.benchmark_group("body");
    group.bench_function("propfind prop", |b| {
        b.iter(|| PropFind::from_xml(black_box(propfind_prop), limits).unwrap())
    });
    group.bench_function("propfind allprop", |b| {
        b.iter(|| PropFind::from_xml(black_box(propfind_allprop), limits).unwrap())
    });
    group.bench_function("propertyupdate (Windows)", |b| {
        b.iter(|| PropertyUpdate::from_xml(black_box(proppatch), limits).unwrap())
    });
    group.bench_function("lockinfo", |b| {
        b.iter(|| LockInfo::from_xml(black_box(lockinfo), limits).unwrap())
    });
    group.finish();
}

/// A head as Windows' WebDAV redirector sends it, and a 1 MiB upload in 64 KiB chunks.
fn http1(c: &mut Criterion) {
    use bytes::BytesMut;
    use davit_proto::h1::{ChunkedDecoder, Decoded, parse_head};
    let head = b"PROPFIND /docs/report.odt HTTP/1.1\r\nConnection: Keep-Alive\r\n\
        User-Agent: Microsoft-WebDAV-MiniRedir/10.0.19045\r\nDepth: 0\r\n\
        translate: f\r\nContent-Length: 0\r\nHost: dav.example.org\r\n\r\n";
    let mut chunked = Vec::new();
    for _ in 0..16 {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend_from_slice(&[b'x'; 0x10000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut group = c.benchmark_group("http1");
    group.bench_function("request head (Windows PROPFIND)", |b| {
        b.iter(|| parse_head(&mut BytesMut::from(black_box(&head[..]))).unwrap())
    });
    group.throughput(Throughput::Bytes(chunked.len() as u64));
    group.bench_function("chunked body, 1 MiB", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(&chunked[..]));
            let mut decoder = ChunkedDecoder::default();
            let mut n = 0;
            while let Decoded::Data(d) = decoder.decode(&mut buf).unwrap() {
                n += d.len();
            }
            n
        })
    });
    group.finish();
}

/// Parse and evaluate, with the state a server would have looked up: the lock token
/// `held` is active on `/docs/report.odt`.
fn if_header(c: &mut Criterion) {
    let held = "urn:uuid:5d1c3c6e-4c0a-4b8e-9d0e-1a2b3c4d5e6f";
    let request = ResourcePath::parse("/docs/report.odt").unwrap();
    let current = ETag::parse("\"5f3a-1790000000\"").unwrap();
    let cases = [
        ("untagged token", format!("(<{held}>)")),
        (
            "tagged token and etag",
            format!("<http://127.0.0.1:8080/docs/report.odt> (<{held}> [\"5f3a-1790000000\"])"),
        ),
        (
            "8 lists, last holds",
            format!(
                "{}(<{held}>)",
                "(<urn:uuid:00000000-0000-0000-0000-000000000000>) ".repeat(7)
            ),
        ),
    ];
    let mut group = c.benchmark_group("if");
    for (name, value) in &cases {
        group.bench_with_input(BenchmarkId::new("parse+evaluate", name), value, |b, v| {
            b.iter(|| {
                let h = IfHeader::parse(black_box(v)).unwrap();
                let holds = h.evaluate(
                    &request,
                    |_| true,
                    |resource, test| match test {
                        IfTest::Token(t) => t == held && *resource == request,
                        IfTest::ETag(e) => e.strong_eq(&current),
                    },
                );
                assert!(holds);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, http1, multistatus, bodies, if_header);
criterion_main!(benches);
