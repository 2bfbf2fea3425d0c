//! `davit passwd`, then `davit serve --config` with users, rules, TLS and a JSON access log,
//! as an operator would set it up.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, StatusCode, Version};

/// `davit serve ARGS` with logs on stderr (captured); returns it and its first stdout line's
/// URL (`http://…/` or `https://…/`).
fn serve(args: &[&std::ffi::OsStr]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_davit"))
        .arg("serve")
        .args(args)
        .env("DAVIT_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    (child, url)
}

/// Stops the server with SIGTERM, checks it exits cleanly, and returns what it logged.
fn stop(mut child: Child) -> String {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{log}");
    log
}

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
    let (child, url) = serve(&["--config".as_ref(), config.as_os_str()]);
    let addr: std::net::SocketAddr = url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("{url:?}"))
        .trim_end_matches('/')
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
    });
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/notes.txt")).unwrap(),
        "hello over TLS"
    );

    // A runtime that is no longer driven cannot answer the server's HTTP/2 goodbye, which
    // would make the server wait its full drain time for this connection.
    drop(client);
    drop(rt);
    let log = stop(child);
    let access: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "davit::access")
        .collect();
    assert_eq!(access.len(), 5, "one line per request:\n{log}");
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
    let (child, base) = serve(&[
        dir.path().as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--access-log".as_ref(),
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(async {
        let r = Client::new()
            .get(format!("{base}missing"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    });
    drop(rt);
    let log = stop(child);
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
