//! Start-up repair of what a crash leaves apart: a MOVE renamed but its properties not yet
//! moved, a DELETE whose content went but whose properties did not; and what it must leave
//! alone: properties of a path that is only missing for now.

use davit_proto::ResourcePath;
use davit_server::{DavServer, Recovery, ServerConfig};

use crate::support::{TestServer, fs_backends};

const SET: &str = r#"<propertyupdate xmlns="DAV:"><set><prop><tag xmlns="urn:t">mine</tag></prop></set></propertyupdate>"#;
const LOCK: &str = r#"<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockinfo>"#;
const ASK: &str = r#"<propfind xmlns="DAV:"><prop><tag xmlns="urn:t"/></prop></propfind>"#;

#[tokio::test]
async fn interrupted_moves_and_deletes_are_finished_and_nothing_else_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    {
        // Back after the repair (the mount came up): its properties are still there.
        std::fs::write(root.join("unmounted"), "u").unwrap();
        let s = TestServer::with_backends(fs_backends(&root), ServerConfig::default(), None).await;
        for (path, body) in [
            ("/moved", "m"),
            ("/deleted", "d"),
            ("/stays", "s"),
            ("/unmounted", "u"),
        ] {
            s.put(path, body).await;
            assert_eq!(s.proppatch(path, SET).await.status(), 207);
        }
        // Locked too: a lock left at a path whose content went would refuse what is
        // created there next.
        for path in ["/moved", "/deleted"] {
            let r = s.req("LOCK", path).body(LOCK).send().await.unwrap();
            assert_eq!(r.status(), 200, "LOCK {path}");
        }
        s.stop().await;
    }
    // What a kill leaves: a move recorded and renamed, its properties not yet moved; a
    // removal recorded and done, its properties not yet removed; a move recorded whose
    // rename never happened. And a file gone without any record (a mount not there yet).
    {
        let backends = fs_backends(&root);
        let p = |s: &str| ResourcePath::from_decoded(s).unwrap();
        backends
            .props
            .begin_move(&p("/moved"), &p("/target"))
            .await
            .unwrap();
        backends
            .props
            .begin_move(&p("/stays"), &p("/nowhere"))
            .await
            .unwrap();
        backends.props.begin_remove(&p("/deleted")).await.unwrap();
        std::fs::rename(root.join("moved"), root.join("target")).unwrap();
        std::fs::remove_file(root.join("deleted")).unwrap();
        std::fs::remove_file(root.join("unmounted")).unwrap();
    }
    let server = DavServer::new(fs_backends(&root), ServerConfig::default());
    assert_eq!(
        server.recover().await.unwrap(),
        Recovery {
            moves_finished: 1,
            moves_abandoned: 1,
            removals_finished: 1,
            deferred: 0,
        }
    );
    assert_eq!(
        server.recover().await.unwrap(),
        Recovery::default(),
        "nothing left to do"
    );
    // One server at a time holds the database.
    drop(server);

    // Back after the repair (the mount came up): its properties are still there.
    std::fs::write(root.join("unmounted"), "u").unwrap();
    let s = TestServer::with_backends(fs_backends(&root), ServerConfig::default(), None).await;
    let tag = |ms: &crate::support::Multistatus| ms.responses[0].text("urn:t", "tag");
    for path in ["/target", "/stays", "/unmounted"] {
        let ms = s.propfind(path, "0", ASK).await;
        assert_eq!(tag(&ms).as_deref(), Some("mine"), "{path}");
    }
    for path in ["/deleted", "/moved"] {
        assert_eq!(s.put(path, "new").await, 201, "PUT {path}");
        let ms = s.propfind(path, "0", ASK).await;
        assert_eq!(tag(&ms), None, "a new file at {path} inherits nothing");
    }
}

/// MOVE /a to /b/x, then /b to /c, both cut short before their properties moved: /a's
/// properties end at /c/x, /b's at /c.
#[tokio::test]
async fn chained_moves_are_finished_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    {
        let s = TestServer::with_backends(fs_backends(&root), ServerConfig::default(), None).await;
        s.put("/a", "a").await;
        s.mkcol("/b").await;
        for path in ["/a", "/b"] {
            let set = SET.replace("mine", &format!("tag of {path}"));
            assert_eq!(s.proppatch(path, &set).await.status(), 207);
        }
        s.stop().await;
    }
    {
        let backends = fs_backends(&root);
        let p = |s: &str| ResourcePath::from_decoded(s).unwrap();
        backends
            .props
            .begin_move(&p("/a"), &p("/b/x"))
            .await
            .unwrap();
        std::fs::rename(root.join("a"), root.join("b/x")).unwrap();
        backends.props.begin_move(&p("/b"), &p("/c")).await.unwrap();
        std::fs::rename(root.join("b"), root.join("c")).unwrap();
    }
    let server = DavServer::new(fs_backends(&root), ServerConfig::default());
    assert_eq!(server.recover().await.unwrap().moves_finished, 2);
    drop(server);
    let s = TestServer::with_backends(fs_backends(&root), ServerConfig::default(), None).await;
    for (path, tag) in [("/c/x", "tag of /a"), ("/c", "tag of /b")] {
        let ms = s.propfind(path, "0", ASK).await;
        assert_eq!(
            ms.responses[0].text("urn:t", "tag").as_deref(),
            Some(tag),
            "{path}"
        );
    }
}

/// A MOVE whose property move failed after its rename (the database refused a write) left
/// its record and the properties at the old path. A file created there next finds them:
/// they follow the moved content, instead of being dropped as stale.
#[tokio::test]
async fn properties_left_by_a_move_follow_its_content_when_the_old_path_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let backends = fs_backends(&root);
    let props = std::sync::Arc::clone(&backends.props);
    let s = TestServer::with_backends(backends, ServerConfig::default(), None).await;
    s.put("/a", "moved").await;
    assert_eq!(s.proppatch("/a", SET).await.status(), 207);
    let p = |s: &str| ResourcePath::from_decoded(s).unwrap();
    props.begin_move(&p("/a"), &p("/b")).await.unwrap();
    std::fs::rename(root.join("a"), root.join("b")).unwrap();

    assert_eq!(s.put("/a", "new").await, 201);
    let tag = |ms: &crate::support::Multistatus| ms.responses[0].text("urn:t", "tag");
    assert_eq!(
        tag(&s.propfind("/b", "0", ASK).await).as_deref(),
        Some("mine")
    );
    assert_eq!(tag(&s.propfind("/a", "0", ASK).await), None);
}
