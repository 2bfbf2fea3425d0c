//! The client library against the real server on port 0: every call, and the per-resource
//! results of the 207 answers.

use std::sync::Arc;

use davit_client::{Client, Depth, LockScope, Overwrite, PropName, PropOp, PropRequest, PropValue};
use davit_server::{Backends, DavServer, ServerConfig, serve};
use davit_store::memory::{MemoryLockStore, MemoryPropertyStore, MemoryStorage};
use davit_store::testing::FaultyStorage;

/// The whole body of a GET.
async fn fetch(c: &Client, path: &str) -> Vec<u8> {
    let mut body = c.get(path).await.unwrap().body;
    let mut got = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        got.extend_from_slice(&chunk.unwrap());
    }
    got
}

async fn start() -> Client {
    let backends = Backends {
        storage: Arc::new(FaultyStorage::new(Arc::new(MemoryStorage::new())).stuck("stuck")),
        props: Arc::new(MemoryPropertyStore::new()),
        locks: Arc::new(MemoryLockStore::new()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(DavServer::new(backends, ServerConfig::default()));
    tokio::spawn(serve(listener, server, std::future::pending()));
    Client::new(&format!("http://{addr}")).unwrap()
}

#[tokio::test]
async fn every_call_and_its_results() {
    let c = start().await;
    let caps = c.options("/").await.unwrap();
    assert!(caps.dav.iter().any(|d| d == "2"));
    assert!(caps.bulk_upload);

    c.mkcol("/d").await.unwrap();
    assert_eq!(c.mkcol("/d").await.unwrap_err().status_code(), Some(405));
    let put = c.put_bytes("/d/a b.txt", "hello".into()).await.unwrap();
    assert!(put.created && put.etag.is_some());
    assert!(
        !c.put_bytes("/d/a b.txt", "hello!".into())
            .await
            .unwrap()
            .created
    );
    let err = c.put_bytes("/none/x", "x".into()).await.unwrap_err();
    assert_eq!(err.status_code(), Some(409));

    let entries = c.list("/d/", Depth::One).await.unwrap().entries;
    assert_eq!(entries.len(), 2);
    let file = entries.iter().find(|e| e.path == "/d/a b.txt").unwrap();
    assert_eq!(file.size, Some(6));
    assert!(entries.iter().any(|e| e.path == "/d/" && e.is_collection));

    let mut download = c.get("/d/a b.txt").await.unwrap();
    assert_eq!(download.len, Some(6));
    let mut body = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut download.body).await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(body, b"hello!");
    assert!(c.get("/missing").await.unwrap_err().is_not_found());

    // PROPPATCH: success, then a protected property fails everything.
    let color = PropName::new("urn:x", "color");
    let ms = c
        .proppatch(
            "/d/a b.txt",
            &[PropOp::Set(color.clone(), PropValue::text("blue"))],
        )
        .await
        .unwrap();
    assert!(ms.is_complete_success());
    let err = c
        .proppatch(
            "/d/a b.txt",
            &[
                PropOp::Set(color.clone(), PropValue::text("red")),
                PropOp::Set(PropName::dav("getetag"), PropValue::text("x")),
            ],
        )
        .await
        .unwrap_err();
    let failures = err.multistatus().unwrap().failures();
    assert_eq!(failures.len(), 2);
    assert!(
        failures.iter().any(|f| f.status == 403
            && f.condition.as_deref() == Some("cannot-modify-protected-property"))
    );
    assert!(
        failures
            .iter()
            .any(|f| f.status == 424 && f.property.as_ref() == Some(&color))
    );
    let ms = c
        .propfind(
            "/d/a b.txt",
            Depth::Zero,
            &PropRequest::Props(vec![color.clone(), PropName::new("urn:x", "nope")]),
        )
        .await
        .unwrap();
    let r = ms.get("/d/a b.txt").unwrap();
    assert_eq!(r.prop("urn:x", "color").unwrap().text(), "blue");
    assert_eq!(r.prop_status("urn:x", "nope"), Some(404));
    assert!(ms.is_complete_success());

    // COPY, MOVE.
    c.copy("/d/", "/e/", Depth::Infinity, Overwrite::Forbid)
        .await
        .unwrap();
    assert_eq!(
        c.copy("/d/", "/e/", Depth::Infinity, Overwrite::Forbid)
            .await
            .unwrap_err()
            .status_code(),
        Some(412)
    );
    c.move_to("/e/a b.txt", "/e/moved.txt", Overwrite::Allow)
        .await
        .unwrap();
    assert_eq!(c.list("/e/", Depth::One).await.unwrap().entries.len(), 2);

    // LOCK, a refused write, UNLOCK.
    let lock = c
        .lock(
            "/d/a b.txt",
            LockScope::Exclusive,
            Depth::Zero,
            Some(60),
            Some("me"),
        )
        .await
        .unwrap();
    assert_eq!(lock.timeout, Some(60));
    let err = c.put_bytes("/d/a b.txt", "x".into()).await.unwrap_err();
    assert!(err.is_locked());
    assert_eq!(err.condition(), Some("lock-token-submitted"));
    assert_eq!(
        c.lock("/d/a b.txt", LockScope::Shared, Depth::Zero, None, None)
            .await
            .unwrap_err()
            .status_code(),
        Some(423)
    );
    // DELETE of the collection: the locked member stays and is the one failure; a 207 of
    // failures only is an error carrying the multistatus.
    c.put_bytes("/d/other", "o".into()).await.unwrap();
    let err = c.delete("/d/").await.unwrap_err();
    let failures = err.failures("/d/");
    assert_eq!(failures.len(), 1);
    assert_eq!(
        (failures[0].path.as_str(), failures[0].status),
        ("/d/a b.txt", 423)
    );
    assert_eq!(c.list("/d/", Depth::One).await.unwrap().entries.len(), 2);
    c.unlock("/d/a b.txt", &lock.token).await.unwrap();
    assert_eq!(
        c.unlock("/d/a b.txt", &lock.token)
            .await
            .unwrap_err()
            .status_code(),
        Some(409)
    );
    assert!(c.delete("/d/").await.unwrap().is_complete_success());
}

#[tokio::test]
async fn partial_delete_failure_is_reported_per_member() {
    let c = start().await;
    c.mkcol("/t").await.unwrap();
    for p in ["/t/a", "/t/stuck-1", "/t/stuck-2"] {
        c.put_bytes(p, "x".into()).await.unwrap();
    }
    let err = c.delete("/t").await.unwrap_err();
    let mut paths: Vec<(String, u16)> = err
        .failures("/t")
        .into_iter()
        .map(|f| (f.path, f.status))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            ("/t/stuck-1".to_owned(), 403),
            ("/t/stuck-2".to_owned(), 403)
        ]
    );
}

#[tokio::test]
async fn bulk_upload_answers_one_response_per_file() {
    let c = start().await;
    c.mkcol("/in").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..5 {
        let p = dir.path().join(format!("f{i}"));
        std::fs::write(&p, vec![b'a' + i as u8; 100_000 * (i + 1)]).unwrap();
        files.push((format!("name \"{i}\".bin"), p));
    }
    files.push(("stuck-but-fine".to_owned(), files[0].1.clone()));
    let ms = c.upload_many("/in/", &files, None).await.unwrap();
    assert_eq!(ms.responses.len(), 6);
    assert!(ms.responses.iter().all(|r| r.status == Some(201)), "{ms:?}");
    let listed = c.list("/in/", Depth::One).await.unwrap().entries;
    let f3 = listed
        .iter()
        .find(|e| e.path == "/in/name \"3\".bin")
        .unwrap();
    assert_eq!(f3.size, Some(400_000));
    // Again: replaced.
    let ms = c.upload_many("/in/", &files[..2], None).await.unwrap();
    assert_eq!(ms.responses.len(), 2, "{ms:?}");
    assert!(ms.responses.iter().all(|r| r.status == Some(204)), "{ms:?}");
    // Into a missing collection: the request itself fails.
    assert_eq!(
        c.upload_many("/nope/", &files[..1], None)
            .await
            .unwrap_err()
            .status_code(),
        Some(404)
    );
}

/// Against a server that takes Digest only (and lets anonymous clients read): the client
/// sends nothing in clear, learns Digest from the first 401, and sends the request again;
/// a streamed upload is read from its file again, also when its nonce has gone stale.
#[tokio::test]
async fn logs_in_with_digest_when_the_server_asks_for_it() {
    use davit_server::auth::{Access, AccessPolicy, Auth, Htdigest, Htpasswd, upsert_digest_line};
    let users = upsert_digest_line("", "ann", "Davit", "s3cret");
    let auth = Auth::new(Htpasswd::default(), AccessPolicy::new(Access::Read))
        .unwrap()
        .digest_users(Htdigest::parse(&users, "Davit").unwrap())
        .digest_only()
        // A second: a retry with a fresh nonce never crosses its end, as one could with
        // a lifetime of zero (a nonce good only within the second it was issued).
        .nonce_lifetime(std::time::Duration::from_secs(1));
    let config = ServerConfig::builder().auth(Some(Arc::new(auth))).build();
    let backends = Backends {
        storage: Arc::new(MemoryStorage::new()),
        props: Arc::new(MemoryPropertyStore::new()),
        locks: Arc::new(MemoryLockStore::new()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(DavServer::new(backends, config));
    tokio::spawn(serve(listener, server, std::future::pending()));
    let origin = format!("http://{addr}");

    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("big.bin");
    std::fs::write(&local, vec![7u8; 300_000]).unwrap();
    let c = Client::builder(&origin)
        .credentials("ann", "s3cret")
        .build()
        .unwrap();
    // A streamed upload as the very first request: anonymous OPTIONS would succeed here,
    // so only the PUT's own 401 tells the client to log in.
    assert!(c.put_file("/big.bin", &local, None).await.unwrap().created);
    c.mkcol("/a b").await.unwrap();
    c.put_bytes("/a b/é.txt", "hello".into()).await.unwrap();
    let names: Vec<String> = c
        .list("/", Depth::Infinity)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(names.contains(&"/a b/é.txt".to_owned()), "{names:?}");
    // Every nonce is stale after two seconds: the next streamed upload meets `stale=true`.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(!c.put_file("/big.bin", &local, None).await.unwrap().created);
    let mut body = c.get("/a b/é.txt").await.unwrap().body;
    let mut got = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, b"hello");

    let wrong = Client::builder(&origin)
        .credentials("ann", "guess")
        .build()
        .unwrap();
    assert_eq!(
        wrong.mkcol("/x").await.unwrap_err().status_code(),
        Some(401)
    );
}

/// A Mac's decomposed local names and the composed names another client gave the remote
/// files are the same files to a sync: changed ones go over the remote's spelling, and
/// nothing is deleted as "gone" or uploaded as a twin.
#[tokio::test]
async fn sync_matches_names_spelled_either_way() {
    const ETE_NFC: &str = "\u{c9}t\u{e9}";
    const ETE_NFD: &str = "E\u{301}te\u{301}";
    let c = start().await;
    c.mkcol("/s").await.unwrap();
    c.mkcol(&format!("/s/{ETE_NFC}")).await.unwrap();
    c.put_bytes(&format!("/s/{ETE_NFC}/a.txt"), "same".into())
        .await
        .unwrap();
    c.put_bytes(&format!("/s/{ETE_NFC}.txt"), "old".into())
        .await
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(local.path().join(ETE_NFD)).unwrap();
    std::fs::write(local.path().join(ETE_NFD).join("a.txt"), "same").unwrap();
    std::fs::write(local.path().join(format!("{ETE_NFD}.txt")), "new!").unwrap();

    let plan = davit_client::sync::plan(&c, local.path(), "/s", true)
        .await
        .unwrap();
    assert!(plan.deletes.is_empty(), "{:?}", plan.deletes);
    assert!(plan.mkcols.is_empty(), "{:?}", plan.mkcols);
    assert_eq!(plan.unchanged, 1);
    let uploads: Vec<&str> = plan.uploads.iter().map(|u| u.1.as_str()).collect();
    assert_eq!(uploads, [format!("/s/{ETE_NFC}.txt")]);

    let report = davit_client::sync::apply(&c, &plan, None).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let mut listed: Vec<String> = c
        .list_recursive("/s/")
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "/s/".to_owned(),
            format!("/s/{ETE_NFC}.txt"),
            format!("/s/{ETE_NFC}/"),
            format!("/s/{ETE_NFC}/a.txt"),
        ]
    );
}

#[tokio::test]
async fn sync_reports_a_file_gone_before_its_upload() {
    let c = start().await;
    c.mkcol("/g").await.unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("kept.txt"), "k").unwrap();
    std::fs::write(local.path().join("gone.txt"), "g").unwrap();
    let plan = davit_client::sync::plan(&c, local.path(), "/g", false)
        .await
        .unwrap();
    assert_eq!(plan.uploads.len(), 2, "{:?}", plan.uploads);
    std::fs::remove_file(local.path().join("gone.txt")).unwrap();
    let report = davit_client::sync::apply(&c, &plan, None).await.unwrap();
    assert!(report.bulk);
    let failed: Vec<&str> = report.errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(failed, ["/g/gone.txt"], "{report:?}");
    // The rest of its batch goes on without it.
    assert_eq!(report.uploaded, ["/g/kept.txt"], "{report:?}");
}

/// Names a form part would not carry intact (the server keeps what follows a `\`, and
/// decodes `%22`) go by PUT: neither lands on another file.
#[tokio::test]
async fn sync_puts_names_a_form_would_change() {
    let c = start().await;
    c.mkcol("/n").await.unwrap();
    let local = tempfile::tempdir().unwrap();
    let files = [
        ("x\\y.txt", "1"),
        ("y.txt", "2"),
        ("100%22.txt", "3"),
        ("z.txt", "4"),
    ];
    for (name, body) in files {
        std::fs::write(local.path().join(name), body).unwrap();
    }
    let plan = davit_client::sync::plan(&c, local.path(), "/n", false)
        .await
        .unwrap();
    let report = davit_client::sync::apply(&c, &plan, None).await.unwrap();
    assert!(report.bulk);
    assert!(
        report.failures.is_empty() && report.errors.is_empty(),
        "{report:?}"
    );
    for (name, body) in files {
        let got = fetch(&c, &format!("/n/{name}")).await;
        assert_eq!(got, body.as_bytes(), "{name}");
    }
    assert_eq!(c.list_recursive("/n/").await.unwrap().entries.len(), 5);
}

/// A pipe, a socket or a device in the folder is left out and reported, not opened (a
/// pipe would wait for a writer forever), and its remote namesake is not deleted.
#[tokio::test]
async fn sync_leaves_special_files_out() {
    let c = start().await;
    c.mkcol("/p").await.unwrap();
    c.put_bytes("/p/pipe", "remote".into()).await.unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("a.txt"), "a").unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(local.path().join("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let synced = async {
        let plan = davit_client::sync::plan(&c, local.path(), "/p", true)
            .await
            .unwrap();
        let report = davit_client::sync::apply(&c, &plan, None).await.unwrap();
        (plan, report)
    };
    let (plan, report) = tokio::time::timeout(std::time::Duration::from_secs(20), synced)
        .await
        .expect("the sync waited on the pipe");
    assert_eq!(plan.skipped.len(), 1, "{plan:?}");
    assert!(plan.skipped[0].0.ends_with("pipe"), "{plan:?}");
    assert!(plan.deletes.is_empty(), "{plan:?}");
    assert_eq!(report.uploaded, ["/p/a.txt"], "{report:?}");
    assert_eq!(fetch(&c, "/p/pipe").await, b"remote");
}
