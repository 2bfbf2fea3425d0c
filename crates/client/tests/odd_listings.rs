//! The recursive listing and download against a server whose listings are odd or hostile:
//! the collection itself listed last, members outside the collection, a `..` path, and
//! collections that name their ancestors (a loop), answered by a scripted server
//! (`support`).

use std::collections::HashMap;

use davit_client::Client;
use support::Answer;

mod support;

fn response(href: &str, collection: bool) -> String {
    let (kind, len) = if collection {
        ("<D:collection/>", String::new())
    } else {
        ("", "<D:getcontentlength>1</D:getcontentlength>".to_owned())
    };
    format!(
        "<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:resourcetype>{kind}</D:resourcetype>{len}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )
}

fn multistatus(entries: &[(&str, bool)]) -> String {
    let body: String = entries.iter().map(|(h, c)| response(h, *c)).collect();
    format!("<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\">{body}</D:multistatus>")
}

/// Answers PROPFIND with `listings[path]` and GET with `files[path]`.
async fn odd_server(listings: HashMap<String, String>, files: HashMap<String, String>) -> Client {
    let (addr, _) = support::scripted(move |req| {
        let found = match req.method.as_str() {
            "PROPFIND" => listings.get(&req.target).map(|b| ("207 Multi-Status", b)),
            "GET" => files.get(&req.target).map(|b| ("200 OK", b)),
            _ => return Answer::new("405 Method Not Allowed", ""),
        };
        match found {
            Some((status, body)) => {
                Answer::new(status, body.clone()).header("Content-Type: application/xml")
            }
            None => Answer::new("404 Not Found", ""),
        }
    })
    .await;
    Client::new(&format!("http://{addr}")).unwrap()
}

async fn odd_tree() -> Client {
    let listings = HashMap::from([
        (
            "/t/".to_owned(),
            multistatus(&[
                ("/t/a.txt", false),
                ("/t/sub/", true),
                ("/etc/", true),
                ("/t/../escape.txt", false),
                ("/t/", true),
            ]),
        ),
        (
            "/t/sub/".to_owned(),
            multistatus(&[("/t/sub/", true), ("/t/", true), ("/t/sub/loop/", true)]),
        ),
        (
            "/t/sub/loop/".to_owned(),
            multistatus(&[("/t/sub/loop/", true), ("/t/sub/", true)]),
        ),
        ("/etc/".to_owned(), multistatus(&[("/etc/passwd", false)])),
    ]);
    let files = HashMap::from([
        ("/t/a.txt".to_owned(), "a".to_owned()),
        ("/escape.txt".to_owned(), "!".to_owned()),
        ("/etc/passwd".to_owned(), "!".to_owned()),
    ]);
    odd_server(listings, files).await
}

/// The paths `list_recursive` walks from `path`, in the order it gives them.
async fn walked(c: &Client, path: &str) -> Vec<String> {
    let entries = c.list_recursive(path).await.unwrap().entries;
    entries.into_iter().map(|e| e.path).collect()
}

#[tokio::test]
async fn the_walk_stays_below_the_collection_and_ends() {
    let c = odd_tree().await;
    let paths = walked(&c, "/t/").await;
    assert_eq!(paths[0], "/t/", "the collection first: {paths:?}");
    let mut members = paths[1..].to_vec();
    members.sort();
    assert_eq!(members, ["/t/a.txt", "/t/sub/", "/t/sub/loop/"]);
}

#[tokio::test]
async fn the_download_writes_only_inside_its_folder() {
    let c = odd_tree().await;
    let out = tempfile::tempdir().unwrap();
    let local = out.path().join("t");
    let done = c.download_tree("/t/", &local, None).await.unwrap();
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    assert_eq!(done.files.len(), 1);
    assert_eq!(done.folders, 3);
    assert_eq!(std::fs::read_to_string(local.join("a.txt")).unwrap(), "a");
    assert!(local.join("sub/loop").is_dir());
    assert!(!out.path().join("escape.txt").exists());
    assert!(!local.join("etc").exists());
}

/// A server that answers in another Unicode spelling than the one asked for (composed
/// hrefs for a decomposed request): the collection's own entry and its members are
/// still recognised.
#[tokio::test]
async fn a_listing_in_another_spelling_is_recognised() {
    let listings = HashMap::from([(
        "/Cafe%CC%81/".to_owned(),
        multistatus(&[("/Caf%C3%A9/", true), ("/Caf%C3%A9/a.txt", false)]),
    )]);
    let c = odd_server(listings, HashMap::new()).await;
    let paths = walked(&c, "/Cafe\u{301}/").await;
    assert_eq!(paths, ["/Caf\u{e9}/", "/Caf\u{e9}/a.txt"]);
}

/// A member listed with an error status (a 403 here) is a failure of the listing, of the
/// download and of a sync, not a member that is missing.
#[tokio::test]
async fn a_member_listed_as_failing_is_reported_not_dropped() {
    let forbidden = "<D:response><D:href>/f/secret.txt</D:href>\
        <D:href>/f/locked/</D:href><D:status>HTTP/1.1 403 Forbidden</D:status></D:response>";
    let body = multistatus(&[("/f/", true), ("/f/a.txt", false)])
        .replace("</D:multistatus>", &format!("{forbidden}</D:multistatus>"));
    let listings = HashMap::from([("/f/".to_owned(), body)]);
    let files = HashMap::from([("/f/a.txt".to_owned(), "a".to_owned())]);
    let c = odd_server(listings, files).await;

    let listing = c.list_recursive("/f/").await.unwrap();
    let failed: Vec<(&str, u16)> = listing
        .failures
        .iter()
        .map(|f| (f.path.as_str(), f.status))
        .collect();
    assert_eq!(failed, [("/f/secret.txt", 403), ("/f/locked/", 403)]);
    assert!(listing.entries.iter().all(|e| e.path != "/f/secret.txt"));

    let out = tempfile::tempdir().unwrap();
    let done = c.download_tree("/f/", out.path(), None).await.unwrap();
    assert_eq!(done.files.len(), 1, "{:?}", done.files);
    let failed: Vec<&str> = done.failed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(failed, ["/f/secret.txt", "/f/locked/"]);

    // Neither uploaded over nor deleted, and reported; a folder of that name is left
    // with what is in it.
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("secret.txt"), "mine").unwrap();
    std::fs::write(local.path().join("b.txt"), "b").unwrap();
    std::fs::create_dir(local.path().join("locked")).unwrap();
    std::fs::write(local.path().join("locked").join("x.txt"), "x").unwrap();
    let plan = davit_client::sync::plan(&c, local.path(), "/f", true)
        .await
        .unwrap();
    let uploads: Vec<&str> = plan.uploads.iter().map(|u| u.1.as_str()).collect();
    assert_eq!(uploads, ["/f/b.txt"]);
    assert!(plan.mkcols.is_empty(), "{:?}", plan.mkcols);
    assert_eq!(plan.deletes, ["/f/a.txt"]);
    assert_eq!(plan.failures.len(), 2, "{:?}", plan.failures);
}

/// Hrefs relative to the collection listed (RFC 4918 §8.3) name its members.
#[tokio::test]
async fn relative_hrefs_name_members() {
    let listings = HashMap::from([
        (
            "/r/".to_owned(),
            multistatus(&[("./", true), ("a%20b.txt", false), ("sub/", true)]),
        ),
        (
            "/r/sub/".to_owned(),
            multistatus(&[("/r/sub/", true), ("c.txt", false), ("../../x.txt", false)]),
        ),
    ]);
    let c = odd_server(listings, HashMap::new()).await;
    let paths = walked(&c, "/r/").await;
    assert_eq!(paths[0], "/r/", "{paths:?}");
    let mut members = paths[1..].to_vec();
    members.sort();
    assert_eq!(members, ["/r/a b.txt", "/r/sub/", "/r/sub/c.txt"]);
}

/// A bulk upload's answer that names a file in the other Unicode spelling than it was sent
/// in: its failure is still that file's, not counted as uploaded too.
#[tokio::test]
async fn a_bulk_failure_spelled_otherwise_is_not_counted_as_uploaded() {
    let (addr, _) = support::scripted(|req| match req.method.as_str() {
        "PROPFIND" => Answer::new("207 Multi-Status", multistatus(&[("/u/", true)]))
            .header("Content-Type: application/xml"),
        "OPTIONS" => Answer::new("200 OK", "")
            .header("DAV: 1, 2")
            .header("Accept-Post: multipart/form-data"),
        "POST" => Answer::new(
            "207 Multi-Status",
            "<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\">\
             <D:response><D:href>/u/Caf%C3%A9.txt</D:href>\
             <D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>\
             <D:response><D:href>/u/ok.txt</D:href>\
             <D:status>HTTP/1.1 201 Created</D:status></D:response></D:multistatus>",
        )
        .header("Content-Type: application/xml"),
        _ => Answer::new("405 Method Not Allowed", ""),
    })
    .await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("Cafe\u{301}.txt"), "x").unwrap();
    std::fs::write(local.path().join("ok.txt"), "y").unwrap();
    let plan = davit_client::sync::plan(&c, local.path(), "/u", false)
        .await
        .unwrap();
    assert_eq!(plan.uploads.len(), 2, "{:?}", plan.uploads);
    let report = davit_client::sync::apply(&c, &plan, None).await.unwrap();
    assert!(report.bulk);
    assert_eq!(report.uploaded, ["/u/ok.txt"], "{report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
}

/// A collection whose own listing failed (cut short with a 507 here) is not deleted by a
/// sync, nor is anything the server did list below it.
#[tokio::test]
async fn a_sync_deletes_nothing_at_or_below_a_listing_that_failed() {
    let cut = "<D:response><D:href>/d/sub/</D:href>\
        <D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>";
    let listings = HashMap::from([
        (
            "/d/".to_owned(),
            multistatus(&[("/d/", true), ("/d/sub/", true), ("/d/gone.txt", false)]),
        ),
        (
            "/d/sub/".to_owned(),
            multistatus(&[("/d/sub/a.txt", false)])
                .replace("</D:multistatus>", &format!("{cut}</D:multistatus>")),
        ),
    ]);
    let c = odd_server(listings, HashMap::new()).await;
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(local.path().join("sub")).unwrap();
    let plan = davit_client::sync::plan(&c, local.path(), "/d", true)
        .await
        .unwrap();
    assert_eq!(plan.deletes, ["/d/gone.txt"]);
    let failed: Vec<&str> = plan.failures.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(failed, ["/d/sub/"]);
}

/// A member collection gone between its parent's listing and its own (another client
/// deleted it) is that member's failure, not the whole collection missing.
#[tokio::test]
async fn a_member_gone_while_listing_is_its_failure_not_the_roots() {
    let listings = HashMap::from([(
        "/g/".to_owned(),
        multistatus(&[("/g/", true), ("/g/sub/", true), ("/g/a.txt", false)]),
    )]);
    let c = odd_server(listings, HashMap::new()).await;
    let listing = c.list_recursive("/g/").await.unwrap();
    let failed: Vec<(&str, u16)> = listing
        .failures
        .iter()
        .map(|f| (f.path.as_str(), f.status))
        .collect();
    assert_eq!(failed, [("/g/sub/", 404)]);

    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("a.txt"), "a").unwrap();
    let plan = davit_client::sync::plan(&c, local.path(), "/g", true)
        .await
        .unwrap();
    assert!(plan.mkcols.is_empty(), "{:?}", plan.mkcols);
    assert!(plan.deletes.is_empty(), "{:?}", plan.deletes);
}
