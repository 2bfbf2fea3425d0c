//! Start-up repair of what a crash leaves apart: a MOVE renamed but its properties not yet
//! moved, and properties of a resource deleted before they were.

use davit_proto::ResourcePath;
use davit_server::{DavServer, Recovery, ServerConfig};

use crate::support::{TestServer, fs_backends};

const SET: &str = r#"<propertyupdate xmlns="DAV:"><set><prop><tag xmlns="urn:t">mine</tag></prop></set></propertyupdate>"#;
const ASK: &str = r#"<propfind xmlns="DAV:"><prop><tag xmlns="urn:t"/></prop></propfind>"#;

#[tokio::test]
async fn properties_follow_an_interrupted_move_and_orphans_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    {
        let s = TestServer::with_backends(fs_backends(&root), ServerConfig::default(), None).await;
        for (path, body) in [("/moved", "m"), ("/deleted", "d"), ("/stays", "s")] {
            s.put(path, body).await;
            assert_eq!(s.proppatch(path, SET).await.status(), 207);
        }
        s.stop().await;
    }
    // What a kill leaves: a move recorded and renamed, its properties not yet moved; a file
    // removed, its properties not yet; a move recorded whose rename never happened.
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
        std::fs::rename(root.join("moved"), root.join("target")).unwrap();
        std::fs::remove_file(root.join("deleted")).unwrap();
    }
    let server = DavServer::new(fs_backends(&root), ServerConfig::default());
    assert_eq!(
        server.recover().await.unwrap(),
        Recovery {
            moves_finished: 1,
            moves_abandoned: 1,
            orphans_removed: 1,
        }
    );
    assert_eq!(
        server.recover().await.unwrap(),
        Recovery::default(),
        "nothing left to do"
    );

    let s = TestServer::with_backends(fs_backends(&root), ServerConfig::default(), None).await;
    let tag = |ms: &crate::support::Multistatus| ms.responses[0].text("urn:t", "tag");
    for path in ["/target", "/stays"] {
        let ms = s.propfind(path, "0", ASK).await;
        assert_eq!(tag(&ms).as_deref(), Some("mine"), "{path}");
    }
    for path in ["/deleted", "/moved"] {
        s.put(path, "new").await;
        let ms = s.propfind(path, "0", ASK).await;
        assert_eq!(tag(&ms), None, "a new file at {path} inherits nothing");
    }
}
