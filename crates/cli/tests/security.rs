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
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let install = |c: &rcgen::CertifiedKey<rcgen::KeyPair>| {
        std::fs::write(&cert_path, c.cert.pem()).unwrap();
        std::fs::write(&key_path, c.signing_key.serialize_pem()).unwrap();
    };
    let old = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let new = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    install(&old);
    // The log goes to a file, read while the server runs.
    let log_path = dir.path().join("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_davit"))
        .arg("serve")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .env("DAVIT_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: std::net::SocketAddr = first
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("{first:?}"))
        .trim_end_matches('/')
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
    let hangup_until_logged = |line: &str| {
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let logged = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::read_to_string(&log_path).is_ok_and(|log| log.contains(line))
        });
        assert!(logged, "{line:?} not logged");
    };

    // Half-written files (a key that does not match): nothing changes.
    std::fs::write(&cert_path, new.cert.pem()).unwrap();
    hangup_until_logged("TLS certificate not reloaded");
    assert!(old_ok() && !new_ok(), "a mismatched pair is not taken");

    install(&new);
    hangup_until_logged("TLS certificate reloaded");
    assert!(new_ok() && !old_ok(), "the renewed certificate is served");
    child.kill().unwrap();
    child.wait().unwrap();
}
