//! `read_only`: every change refused with 403 and nothing changed; reads as usual; OPTIONS
//! and `supportedlock` offer no locking, so clients mount read-only.

use davit_server::ServerConfig;
use reqwest::StatusCode;

use crate::support::{Kind, TestServer};

macro_rules! read_only {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test]
                async fn memory() {
                    super::$name(Kind::Memory).await;
                }
                #[tokio::test]
                async fn fs() {
                    super::$name(Kind::Fs).await;
                }
            }
        )*
    };
}

/// A read-only server; on the folder backend, the folder holds `/d/f` ("x").
async fn read_only_server(kind: Kind) -> TestServer {
    let config = ServerConfig::builder().read_only(true).build();
    match kind {
        // Empty: the refusals come before any look-up.
        Kind::Memory => TestServer::start_with(kind, config).await,
        Kind::Fs => {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("d")).unwrap();
            std::fs::write(dir.path().join("d/f"), "x").unwrap();
            let backends = crate::support::fs_backends(dir.path());
            TestServer::with_backends(backends, config, Some(dir)).await
        }
    }
}

async fn every_change_is_refused_and_nothing_changes(kind: Kind) {
    let s = read_only_server(kind).await;
    let changes = [
        ("PUT", "/new", vec![]),
        ("PUT", "/d/f", vec![]),
        ("DELETE", "/d/", vec![]),
        ("MKCOL", "/c/", vec![]),
        ("COPY", "/d/", vec![("Destination", "/e/")]),
        ("MOVE", "/d/f", vec![("Destination", "/g")]),
        ("PROPPATCH", "/d/f", vec![]),
        ("LOCK", "/d/f", vec![]),
        ("UNLOCK", "/d/f", vec![("Lock-Token", "<urn:uuid:x>")]),
        (
            "POST",
            "/d/",
            vec![("Content-Type", "multipart/form-data; boundary=b")],
        ),
    ];
    for (method, path, headers) in changes {
        let mut req = s.req(method, path).body("--b--\r\n");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("read-only"), "{method}: {body}");
    }
    for missing in ["/new", "/c/", "/e/", "/g"] {
        assert_eq!(
            s.req("GET", missing).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
    if kind == Kind::Fs {
        assert_eq!(s.get_text("/d/f").await, (StatusCode::OK, "x".into()));
        let ms = s
            .propfind(
                "/d/",
                "1",
                r#"<propfind xmlns="DAV:"><prop><supportedlock/></prop></propfind>"#,
            )
            .await;
        assert_eq!(ms.hrefs(), ["/d/", "/d/f"]);
        let (status, lock) = ms.get("/d/f").prop("DAV:", "supportedlock").unwrap();
        assert_eq!(status, 200);
        assert_eq!(lock.elements().count(), 0, "no lock entries");
    }
}

async fn options_offers_no_locking_and_no_writes(kind: Kind) {
    let s = read_only_server(kind).await;
    for path in ["/", "/missing"] {
        let r = s.req("OPTIONS", path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["dav"], "1, 3", "{path}");
        let allow = r.headers()["allow"].to_str().unwrap();
        for write in ["PUT", "DELETE", "MKCOL", "LOCK", "POST", "PROPPATCH"] {
            assert!(!allow.contains(write), "{path}: {allow}");
        }
        assert!(r.headers().get("ms-author-via").is_none());
        assert!(r.headers().get("accept-post").is_none());
    }
    // The methods a 405 or 501 names are the ones this server takes.
    for method in ["PATCH", "FROB"] {
        let r = s.req(method, "/").send().await.unwrap();
        assert_eq!(
            r.headers()["allow"],
            "OPTIONS, GET, HEAD, PROPFIND",
            "{method}"
        );
    }
    let r = s
        .req("GET", "/")
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<table>") && !html.contains("<form"),
        "{html}"
    );
}

read_only!(
    every_change_is_refused_and_nothing_changes,
    options_offers_no_locking_and_no_writes,
);
