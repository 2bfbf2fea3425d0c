//! `davit passwd`, then `davit serve --config` with users, rules, TLS and a JSON access log,
//! as an operator would set it up; the TLS certificate renewed while serving.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Served, request};
use reqwest::{Client, StatusCode, Version};

fn passwd(file: &std::path::Path, user: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args(["passwd", file.to_str().unwrap(), user])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn passwd_config_tls_http2_rules_and_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    passwd(&users, "alice", "wonderland");
    passwd(&users, "bob", "builder");
    passwd(&users, "alice", "looking-glass");
    let text = std::fs::read_to_string(&users).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().all(|l| l.contains(":$argon2id$")), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&users).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read the password file");
    }

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.path().join("davit.toml"),
        r#"
dir = "data"
listen = "127.0.0.1:0"
htpasswd = "users"
tls-cert = "cert.pem"
tls-key = "key.pem"
access-log = true
log-format = "json"

[users.bob]
access = "read"
"#,
    )
    .unwrap();

    let config = dir.path().join("davit.toml");
    let served = Served::start(&["--config".as_ref(), config.as_os_str()], "info", true);
    let addr: std::net::SocketAddr = served
        .base
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("{:?}", served.base))
        .parse()
        .unwrap();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/notes.txt", addr.port());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = client.put(&url).body("x").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.version(), Version::HTTP_2, "HTTP/2 chosen by ALPN");
        let r = client
            .put(&url)
            .basic_auth("alice", Some("wonderland"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "the old password is gone"
        );
        let r = client
            .put(&url)
            .basic_auth("alice", Some("looking-glass"))
            .body("hello over TLS")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = client
            .get(&url)
            .basic_auth("bob", Some("builder"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "hello over TLS");
        let r = client
            .delete(&url)
            .basic_auth("bob", Some("builder"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "bob reads only");

        // HTTP/1.1 over TLS (Windows, davfs2): a file too large to be held in memory goes
        // through TLS, never past it (no sendfile).
        let http1 = Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
            )
            .resolve("localhost", addr)
            .http1_only()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let big: Vec<u8> = (0..400_000u32).map(|i| (i % 239) as u8).collect();
        let big_url = format!("https://localhost:{}/big.bin", addr.port());
        let r = http1
            .put(&big_url)
            .basic_auth("alice", Some("looking-glass"))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), Version::HTTP_11);
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = http1
            .get(&big_url)
            .basic_auth("bob", Some("builder"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), Version::HTTP_11);
        assert_eq!(
            r.content_length(),
            Some(400_000),
            "logged, and still with its length"
        );
        assert!(r.bytes().await.unwrap() == big, "content differs over TLS");
    });
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/notes.txt")).unwrap(),
        "hello over TLS"
    );

    // A runtime that is no longer driven cannot answer the server's HTTP/2 goodbye, which
    // would make the server wait its full drain time for this connection.
    drop(client);
    drop(rt);
    let log = served.stop();
    let access: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "davit::access")
        .collect();
    assert_eq!(access.len(), 7, "one line per request:\n{log}");
    let created = access
        .iter()
        .find(|v| v["fields"]["status"] == 201)
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(created["fields"]["user"], "alice");
    assert_eq!(created["fields"]["method"], "PUT");
    assert_eq!(created["fields"]["path"], "/notes.txt");
    assert_eq!(created["fields"]["client"], "127.0.0.1");
    let read = access
        .iter()
        .find(|v| v["fields"]["method"] == "GET")
        .unwrap();
    assert_eq!(read["fields"]["user"], "bob");
    assert_eq!(read["fields"]["bytes"], 14);
    assert!(
        log.contains("login failed"),
        "failed logins are logged:\n{log}"
    );
}

#[test]
fn the_text_access_log_is_plain_lines_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &[
            dir.path().as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--access-log".as_ref(),
        ],
        "info",
        true,
    );
    let (status, _) = request("GET", &format!("{}/missing", served.base), "");
    assert_eq!(status, 404);
    let log = served.stop();
    let access = log
        .lines()
        .find(|l| l.contains("davit::access"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        !log.contains('\u{1b}'),
        "no terminal colour codes in a log file: {log:?}"
    );
    for field in [
        "method=GET",
        "path=/missing",
        "status=404",
        "client=127.0.0.1",
    ] {
        assert!(access.contains(field), "{field} in {access}");
    }
}

/// SIGHUP reads the certificate and key again: new connections get the new certificate,
/// and files that do not make an identity leave the one in use.
#[test]
fn sighup_reloads_the_tls_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let install = |c: &rcgen::CertifiedKey<rcgen::KeyPair>| {
        std::fs::write(&cert_path, c.cert.pem()).unwrap();
        std::fs::write(&key_path, c.signing_key.serialize_pem()).unwrap();
    };
    let old = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let new = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    install(&old);
    let root = dir.path().join("data");
    let served = Served::start(
        &[
            root.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--tls-cert".as_ref(),
            cert_path.as_os_str(),
            "--tls-key".as_ref(),
            key_path.as_os_str(),
        ],
        "info",
        true,
    );
    let addr: std::net::SocketAddr = served
        .base
        .strip_prefix("https://")
        .unwrap()
        .parse()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A fresh client per request: each handshake is a new connection.
    let trusting = |c: &rcgen::CertifiedKey<rcgen::KeyPair>| {
        let pem = c.cert.pem();
        move || {
            let client = Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
                .resolve("localhost", addr)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let url = format!("https://localhost:{}/", addr.port());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { client.get(url).send().await.is_ok() })
        }
    };
    let (old_ok, new_ok) = (trusting(&old), trusting(&new));
    assert!(old_ok() && !new_ok());
    let hangup = || {
        let status = Command::new("kill")
            .args(["-HUP", &served.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };

    // Half-written files (a key that does not match): nothing changes.
    std::fs::write(&cert_path, new.cert.pem()).unwrap();
    hangup();
    // Time for the signal to be handled; the log checked below shows it was.
    std::thread::sleep(Duration::from_millis(500));
    assert!(old_ok() && !new_ok(), "a mismatched pair is not taken");

    install(&new);
    hangup();
    let renewed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        new_ok()
    });
    assert!(renewed && !old_ok(), "the renewed certificate is served");
    let log = served.stop();
    assert!(log.contains("TLS certificate not reloaded"), "{log}");
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}
