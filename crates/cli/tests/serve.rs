//! `davit serve` as a process: the first stdout line, persistence across a restart, and a
//! clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Served {
    child: Child,
    base: String,
}

fn start(dir: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args(["serve", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("DAVIT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("davit starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim()
        .trim_end_matches('/')
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(!base.ends_with(":0"), "the bound port is printed, not 0");
    Served { child, base }
}

fn stop(mut s: Served) {
    let status = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(exit) = s.child.try_wait().unwrap() {
            assert!(exit.success(), "davit exited with {exit}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = s.child.kill();
    panic!("davit did not stop on SIGTERM");
}

fn request(method: &str, url: &str, body: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .header("Depth", "0")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

#[test]
fn serve_prints_its_address_keeps_properties_across_a_restart_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    assert_eq!(
        request("PUT", &format!("{}/note.txt", s.base), "hello").0,
        201
    );
    let set = r#"<propertyupdate xmlns="DAV:"><set><prop><color xmlns="urn:x">blue</color></prop></set></propertyupdate>"#;
    assert_eq!(
        request("PROPPATCH", &format!("{}/note.txt", s.base), set).0,
        207
    );
    stop(s);

    assert_eq!(
        std::fs::read_to_string(dir.path().join("note.txt")).unwrap(),
        "hello"
    );
    let s = start(dir.path());
    let ask = r#"<propfind xmlns="DAV:"><prop><color xmlns="urn:x"/></prop></propfind>"#;
    let (status, body) = request("PROPFIND", &format!("{}/note.txt", s.base), ask);
    assert_eq!(status, 207);
    assert!(body.contains(">blue</"), "{body}");
    let (status, _) = request("GET", &format!("{}/.davit/davit.sqlite", s.base), "");
    assert_eq!(status, 404, "the database is not served");
    stop(s);
}
