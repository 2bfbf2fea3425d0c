//! `kill -9` in the middle of PUTs and MOVEs, round after round: after every restart each
//! file is whole (its old or its new content, never a mix or a truncation) and its dead
//! property is still its own, wherever a MOVE left it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Served;
use reqwest::{Client, Method, StatusCode};

const FILES: usize = 4;
const ROUNDS: u64 = 24;
/// Each PUT body: 48 chunks, sent with pauses, so a kill often lands while one is arriving.
const CHUNKS: usize = 48;

fn start(dir: &Path) -> (Served, String) {
    let s = Served::start(
        &[dir.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        "error",
        false,
    );
    let base = s.base.clone();
    (s, base)
}

/// One repeated unit per (file, generation): a torn file mixes units or stops mid-way.
fn unit(id: usize, generation: u64) -> String {
    format!("id={id} generation={generation};")
}

fn chunk(id: usize, generation: u64) -> bytes::Bytes {
    bytes::Bytes::from(unit(id, generation).repeat(200))
}

/// (id, generation) of a whole file; panics on a torn one.
fn whole(name: &str, body: &[u8]) -> (usize, u64) {
    let text = std::str::from_utf8(body).unwrap_or_else(|_| panic!("{name}: not text"));
    let first = text.split_inclusive(';').next().unwrap_or_default();
    let fields: Vec<&str> = first
        .trim_end_matches(';')
        .split(' ')
        .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
        .collect();
    let [id, generation] = fields[..] else {
        panic!(
            "{name}: torn or foreign content {:?}",
            &text[..text.len().min(60)]
        );
    };
    let (id, generation) = (id.parse().unwrap(), generation.parse().unwrap());
    let expected = chunk(id, generation).len() * CHUNKS;
    assert_eq!(body.len(), expected, "{name}: torn (length)");
    assert_eq!(
        text,
        unit(id, generation).repeat(200 * CHUNKS),
        "{name}: torn (mixed content)"
    );
    (id, generation)
}

fn prop_body(id: usize) -> String {
    format!(
        r#"<propertyupdate xmlns="DAV:"><set><prop><fid xmlns="urn:crash">{id}</fid></prop></set></propertyupdate>"#
    )
}

async fn put(
    client: &Client,
    url: &str,
    id: usize,
    generation: u64,
) -> reqwest::Result<StatusCode> {
    let body = futures_util::stream::unfold(0, move |n| async move {
        if n == CHUNKS {
            return None;
        }
        tokio::time::sleep(Duration::from_micros(300)).await;
        Some((Ok::<_, std::io::Error>(chunk(id, generation)), n + 1))
    });
    let r = client
        .put(url)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    Ok(r.status())
}

/// Every file under the root with its `fid` property, checked whole.
async fn survey(client: &Client, base: &str) -> Vec<(String, usize, Option<usize>)> {
    let r = client
        .request(Method::from_bytes(b"PROPFIND").unwrap(), format!("{base}/"))
        .header("Depth", "1")
        .body(r#"<propfind xmlns="DAV:"><prop><fid xmlns="urn:crash"/></prop></propfind>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let text = r.text().await.unwrap();
    let mut found = Vec::new();
    for response in text.split("<D:response>").skip(1) {
        let href = between(response, "<D:href>", "</D:href>")
            .unwrap()
            .to_owned();
        if href == "/" {
            continue;
        }
        let fid = between(response, "urn:crash\">", "</").and_then(|v| v.parse().ok());
        let body = client.get(format!("{base}{href}")).send().await.unwrap();
        assert_eq!(body.status(), StatusCode::OK, "{href}");
        let (id, _) = whole(&href, &body.bytes().await.unwrap());
        found.push((href, id, fid));
    }
    found
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

#[test]
fn kill_9_during_puts_and_moves_never_tears_a_file_or_separates_its_properties() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new();
    let (mut child, mut base) = start(dir.path());
    rt.block_on(async {
        for id in 0..FILES {
            let url = format!("{base}/a{id}");
            assert_eq!(
                put(&client, &url, id, 0).await.unwrap(),
                StatusCode::CREATED
            );
            let r = client
                .request(Method::from_bytes(b"PROPPATCH").unwrap(), &url)
                .body(prop_body(id))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::MULTI_STATUS);
        }
    });
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut generation = 1u64;
    let mut killed_mid_request = 0;
    for round in 0..ROUNDS {
        // Work on every file at once, each by its own task: PUT a new generation, MOVE it
        // to its other name, again and again, until the kill.
        let names: Vec<(String, usize)> = rt
            .block_on(survey(&client, &base))
            .into_iter()
            .map(|(href, id, _)| (href, id))
            .collect();
        let tasks: Vec<_> = names
            .into_iter()
            .map(|(href, id)| {
                let (client, base) = (client.clone(), base.clone());
                let first_generation = generation;
                rt.spawn(async move {
                    let mut name = href;
                    let mut g = first_generation;
                    loop {
                        let url = format!("{base}{name}");
                        // An error other than a refused connection: the kill landed while
                        // this request was under way.
                        match put(&client, &url, id, g).await {
                            Ok(st) if st.is_success() => {}
                            Ok(st) => panic!("PUT {name} answered {st}"),
                            Err(e) => return !e.is_connect(),
                        }
                        g += 1;
                        let other = if name.starts_with("/a") {
                            format!("/b{id}")
                        } else {
                            format!("/a{id}")
                        };
                        let moved = client
                            .request(Method::from_bytes(b"MOVE").unwrap(), &url)
                            .header("Destination", format!("{base}{other}"))
                            .send()
                            .await;
                        match moved {
                            Ok(r) if r.status().is_success() => name = other,
                            Ok(r) => panic!("MOVE {name} answered {}", r.status()),
                            Err(e) => return !e.is_connect(),
                        }
                    }
                })
            })
            .collect();
        generation += 1000;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 180));
        child.kill();
        for t in tasks {
            if rt.block_on(t).unwrap() {
                killed_mid_request += 1;
            }
        }
        // A new port at every start.
        (child, base) = start(dir.path());
        let found = rt.block_on(survey(&client, &base));
        assert_eq!(found.len(), FILES, "round {round}: files {found:?}");
        let mut ids: Vec<usize> = found.iter().map(|(_, id, _)| *id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..FILES).collect::<Vec<_>>(), "round {round}");
        for (href, id, fid) in &found {
            assert_eq!(
                *fid,
                Some(*id),
                "round {round}: {href} has another file's properties"
            );
        }
    }
    drop(child);
    assert!(killed_mid_request > 0, "no kill landed during a request");
}
