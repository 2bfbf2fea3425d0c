//! The `davit` binary as a user runs it: `davit serve` as a process (first stdout line,
//! persistence across a restart, a clean stop on SIGTERM) and the client commands against
//! it, checking what they print and how they exit.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Served, request};

fn start(dir: &Path) -> Served {
    start_with(dir, &[])
}

fn start_with(dir: &Path, extra: &[&str]) -> Served {
    let mut args = vec![dir.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let s = Served::start(&args, "warn", false);
    assert!(s.base.starts_with("http://127.0.0.1:"), "{}", s.base);
    s
}

fn stop(s: Served) {
    s.stop();
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

/// The soft and hard open-file limits of a running process.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut numbers = line.split_whitespace().filter_map(|w| w.parse().ok());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

#[test]
fn serve_raises_a_low_open_file_limit_and_fits_its_connections_to_a_low_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let args = [dir.path().to_str().unwrap(), "--listen", "127.0.0.1:0"];
    // A hard limit may only be lowered: this test's own bounds the one given to davit.
    let hard = open_file_limits(std::process::id()).1.min(8192);
    if hard >= 1024 * 5 + 256 {
        let nofile = format!("--nofile=512:{hard}");
        let s = Served::start_through(&["prlimit", &nofile, "--"], &args, "warn", true);
        assert_eq!(open_file_limits(s.pid()), (hard, hard));
        assert_eq!(request("PUT", &format!("{}/a.txt", s.base), "a").0, 201);
        let log = s.stop();
        assert!(!log.contains("open-file limit"), "{log}");
    } else {
        eprintln!("the hard open-file limit {hard} is too low to raise to 1024 connections");
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    }

    // 300 descriptors: 256 spare, 5 per connection.
    let s = Served::start_through(&["prlimit", "--nofile=300:300", "--"], &args, "warn", true);
    assert_eq!(open_file_limits(s.pid()), (300, 300));
    assert_eq!(request("GET", &format!("{}/a.txt", s.base), "").0, 200);
    let log = s.stop();
    assert!(
        log.contains("open-file limit allows fewer connections") && log.contains("connections=8"),
        "{log}"
    );
}

#[test]
fn connections_beyond_max_connections_wait_in_a_listen_queue_of_1024() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--max-connections",
        "1",
    ];
    // The kernel caps every listen queue at this; at 128 (before Linux 5.4) there is
    // nothing to tell apart.
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if somaxconn <= 129 {
        eprintln!("net.core.somaxconn is {somaxconn}: every listen queue is that short");
        return;
    }
    let s = Served::start(&args, "warn", false);
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    // One is served; the rest are queued by the kernel, past the 128 a default listener
    // queues, after which a handshake is dropped and connect times out.
    let waiting: Vec<_> = (0..somaxconn.min(400))
        .map(|i| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect();
    drop(waiting);
    assert_eq!(request("PUT", &format!("{}/a.txt", s.base), "a").0, 201);
    stop(s);
}

/// Runs a client command; returns (exit code, stdout, stderr).
/// `serve` of a fresh folder under `dir` with `flags`, which must be refused before the
/// folder is created; the error it prints.
fn refused_at_start(dir: &Path, flags: &[&str]) -> String {
    let fresh = dir.join("fresh");
    let out = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args(["serve", fresh.to_str().unwrap()])
        .args(flags)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{flags:?}");
    assert!(!fresh.exists(), "nothing was created");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn davit(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args(args)
        .env("NETRC", "/nonexistent")
        .output()
        .unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = davit(args);
    assert_eq!(code, 0, "davit {args:?} failed: {err}");
    out
}

#[test]
fn recursive_rm_reports_the_locked_member_and_deletes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let u = |p: &str| format!("{}{p}", s.base);
    ok(&["mkdir", &u("/t/")]);
    ok(&["mkdir", &u("/t/sub/")]);
    for f in ["a.txt", "locked.txt", "sub/b.txt"] {
        std::fs::write(dir.path().join("local"), "x").unwrap();
        ok(&[
            "put",
            dir.path().join("local").to_str().unwrap(),
            &u(&format!("/t/{f}")),
        ]);
    }
    let token = ok(&["lock", &u("/t/locked.txt")]).trim().to_owned();
    assert!(token.starts_with("urn:uuid:"), "{token}");

    let (code, _, err) = davit(&["rm", &u("/t/")]);
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line per failed member: {err}");
    assert!(
        lines[0].starts_with("/t/locked.txt: 423 Locked (lock-token-submitted)"),
        "{err}"
    );
    let left = ok(&["ls", "-R", &u("/t/")]);
    let paths: Vec<&str> = left
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    assert_eq!(paths, ["/t/", "/t/locked.txt"], "{left}");

    ok(&["unlock", &u("/t/locked.txt"), &token]);
    ok(&["rm", &u("/t/")]);
    stop(s);
}

#[test]
fn props_set_of_a_protected_property_reports_403_and_424() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let url = format!("{}/f.txt", s.base);
    std::fs::write(dir.path().join("f.txt"), "x").unwrap();
    let (code, _, err) = davit(&[
        "props",
        "set",
        &url,
        "{urn:x}color=blue",
        "getetag=forged",
        "{urn:x}size=big",
    ]);
    assert_eq!(code, 1);
    let mut lines: Vec<&str> = err.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "/f.txt {DAV:}getetag: 403 Forbidden (cannot-modify-protected-property)",
            "/f.txt {urn:x}color: 424 Failed Dependency",
            "/f.txt {urn:x}size: 424 Failed Dependency",
        ],
        "{err}"
    );
    ok(&["props", "set", &url, "{urn:x}color=blue"]);
    let out = ok(&["props", "get", &url, "{urn:x}color"]);
    assert_eq!(out.trim(), "{urn:x}color\tblue");
    ok(&["props", "rm", &url, "{urn:x}color"]);
    let out = ok(&["props", "get", &url, "{urn:x}color"]);
    assert_eq!(out.trim(), "{urn:x}color\t(404 Not Found)");
    stop(s);
}

#[test]
fn sync_twice_uploads_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("deep/er")).unwrap();
    for (p, body) in [
        ("a.txt", "a"),
        ("deep/b.txt", "bb"),
        ("deep/er/c.txt", "ccc"),
    ] {
        std::fs::write(local.path().join(p), body).unwrap();
    }
    let s = start(dir.path());
    let url = format!("{}/mirror/", s.base);
    let first = ok(&["sync", local.path().to_str().unwrap(), &url]);
    assert!(
        first.starts_with("uploaded 3, created 3, deleted 0, unchanged 0, failed 0"),
        "{first}"
    );
    let second = ok(&["sync", local.path().to_str().unwrap(), &url]);
    assert!(
        second.starts_with("uploaded 0, created 0, deleted 0, unchanged 3, failed 0"),
        "{second}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mirror/deep/er/c.txt")).unwrap(),
        "ccc"
    );

    // A change, a removal, and --delete.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(local.path().join("a.txt"), "changed").unwrap();
    std::fs::remove_dir_all(local.path().join("deep/er")).unwrap();
    let third = ok(&["sync", "--delete", local.path().to_str().unwrap(), &url]);
    assert!(
        third.starts_with("uploaded 1, created 0, deleted 1, unchanged 1, failed 0"),
        "{third}"
    );
    assert!(!dir.path().join("mirror/deep/er").exists());
    stop(s);
}

/// Behind a proxy that forwards `/dav/` as it is: the printed URL, the client commands and
/// sync all work under the base path, and nothing is served outside it.
#[test]
fn serve_under_a_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("deep")).unwrap();
    std::fs::write(local.path().join("a.txt"), "a").unwrap();
    std::fs::write(local.path().join("deep/b.txt"), "bb").unwrap();
    let s = start_with(dir.path(), &["--base-path", "/dav/"]);
    let root = s
        .base
        .strip_suffix("/dav")
        .expect("the URL ends in the base");
    let url = format!("{}/mirror/", s.base);
    let first = ok(&["sync", local.path().to_str().unwrap(), &url]);
    assert!(first.starts_with("uploaded 2, created 2,"), "{first}");
    let second = ok(&["sync", local.path().to_str().unwrap(), &url]);
    assert!(second.contains("unchanged 2, failed 0"), "{second}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mirror/deep/b.txt")).unwrap(),
        "bb"
    );
    ok(&["mv", &format!("{url}a.txt"), &format!("{url}deep/a.txt")]);
    let listed = ok(&["ls", "-R", &url]);
    let paths: Vec<&str> = listed
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/dav/mirror/",
            "/dav/mirror/deep/",
            "/dav/mirror/deep/a.txt",
            "/dav/mirror/deep/b.txt"
        ],
        "{listed}"
    );
    let (code, _, err) = davit(&["ls", &format!("{root}/mirror/")]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
    stop(s);
}

#[test]
fn put_of_several_files_is_one_bulk_upload_with_one_response_each() {
    let dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    ok(&["mkdir", &format!("{}/in/", s.base)]);
    let names: Vec<String> = (0..12).map(|i| format!("file {i} #.txt")).collect();
    let mut args = vec!["put".to_owned()];
    for n in &names {
        std::fs::write(local.path().join(n), n).unwrap();
        args.push(local.path().join(n).to_str().unwrap().to_owned());
    }
    args.push(format!("{}/in/", s.base));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = davit(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.lines().filter(|l| l.ends_with(": 201 Created")).count(),
        12,
        "{err}"
    );
    for n in &names {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("in").join(n)).unwrap(),
            *n
        );
    }
    stop(s);
}

#[test]
fn ls_json_get_mv_cp_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let u = |p: &str| format!("{}{p}", s.base);
    std::fs::write(dir.path().join("note.txt"), "hello").unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&["ls", "--json", &u("/")])).unwrap();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["path"], "/note.txt");
    assert_eq!(entries[1]["size"], 5);
    assert_eq!(entries[1]["type"], "file");

    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("copy.txt");
    ok(&["get", &u("/note.txt"), target.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "hello");
    assert_eq!(ok(&["get", &u("/note.txt"), "-"]), "hello");

    ok(&["cp", &u("/note.txt"), "copy.txt"]);
    ok(&["mv", &u("/copy.txt"), &u("/moved.txt")]);
    let (code, _, err) = davit(&["mv", "--no-overwrite", &u("/note.txt"), "/moved.txt"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("/note.txt: 412 Precondition Failed"),
        "{err}"
    );
    let (code, _, err) = davit(&[
        "get",
        &u("/missing"),
        out.path().join("m").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.starts_with("/missing: 404 Not Found"), "{err}");
    let (code, _, err) = davit(&["ls", "ftp://nowhere/"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = davit(&["ls", "http://127.0.0.1:1/"]);
    assert_eq!(code, 2, "an unreachable server is not a resource failure");
    stop(s);
}

#[test]
fn a_database_placed_in_the_served_folder_is_hidden_with_its_side_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("props.db");
    let s = start_with(dir.path(), &["--meta", db.to_str().unwrap()]);
    let u = |p: &str| format!("{}{p}", s.base);
    std::fs::write(dir.path().join("f"), "x").unwrap();
    ok(&["props", "set", &u("/f"), "{urn:x}a=1"]);
    assert!(
        dir.path().join("props.db-wal").exists(),
        "SQLite keeps a WAL beside the database"
    );
    let listing = ok(&["ls", &u("/")]);
    assert!(!listing.contains("props.db"), "{listing}");
    for name in ["/props.db", "/props.db-wal", "/props.db-shm"] {
        let (code, _, err) = davit(&["get", &u(name), "-"]);
        assert_eq!(code, 1, "{name}: {err}");
        let (code, _, _) = davit(&["rm", &u(name)]);
        assert_eq!(code, 1, "{name} cannot be deleted");
    }
    stop(s);
}

/// Voluntary context switches of each of the process's threads.
fn wakeups(pid: u32) -> std::collections::HashMap<String, u64> {
    let mut by_thread = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        // A thread that ended since the listing has no status left to read.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .map(|n| n.trim().parse().unwrap())
            .unwrap();
        by_thread.insert(task.file_name().to_string_lossy().into_owned(), switches);
    }
    by_thread
}

/// With no connection open and its caches emptied, the server sleeps until the next
/// connection: no timer wakes it. The watchdog's clock runs again for that connection.
#[test]
fn an_idle_server_does_not_wake() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(
        dir.path(),
        &["--cache-ttl-ms", "100", "--idle-timeout", "1"],
    );
    assert_eq!(request("PUT", &format!("{}/f", s.base), "x").0, 201);
    assert_eq!(request("GET", &format!("{}/f", s.base), "").0, 200);
    // The read cache keeps a file for 30 times its time-to-live.
    std::thread::sleep(Duration::from_secs(5));
    let before = wakeups(s.pid());
    std::thread::sleep(Duration::from_secs(3));
    let after = wakeups(s.pid());
    let woken: u64 = after
        .iter()
        .filter_map(|(tid, n)| before.get(tid).map(|b| n - b))
        .sum();
    assert!(woken <= 1, "{woken} wakeups in 3 s of idling");

    // A connection that sends nothing is still closed once idle past the timeout.
    let addr = s.base.strip_prefix("http://").unwrap();
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "closed by the server");
    stop(s);
}

/// `--read-only` creates and writes nothing: a folder without a database stays without
/// one, an existing database is read (its properties show) and left as it was.
#[test]
fn read_only_serves_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let s = start_with(dir.path(), &["--read-only"]);
    assert_eq!(
        request("GET", &format!("{}/f", s.base), ""),
        (200, "x".into())
    );
    assert_eq!(request("PUT", &format!("{}/f", s.base), "y").0, 403);
    stop(s);
    assert_eq!(std::fs::read_to_string(dir.path().join("f")).unwrap(), "x");
    assert!(
        !dir.path().join(".davit").exists(),
        "no database was created"
    );

    let s = start(dir.path());
    let url = format!("{}/f", s.base);
    ok(&["props", "set", &url, "{urn:x}color=blue"]);
    stop(s);
    let db = dir.path().join(".davit/davit.sqlite");
    let before = std::fs::read(&db).unwrap();
    let s = start_with(dir.path(), &["--read-only"]);
    let url = format!("{}/f", s.base);
    assert_eq!(
        ok(&["props", "get", &url, "{urn:x}color"]).trim(),
        "{urn:x}color\tblue"
    );
    let (code, _, err) = davit(&["props", "set", &url, "{urn:x}color=red"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("403"), "{err}");
    stop(s);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database is as it was"
    );

    let missing = dir.path().join("missing");
    let out = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args([
            "serve",
            missing.to_str().unwrap(),
            "--read-only",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not create it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!missing.exists());
}

/// `get -R` copies a tree down, names with spaces and accents included; a member that
/// cannot be written is reported, and the rest still arrive.
#[test]
fn get_recursive_downloads_a_tree_and_reports_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("tree");
    std::fs::create_dir_all(served.join("sub/über")).unwrap();
    std::fs::create_dir(served.join("empty")).unwrap();
    for (p, body) in [
        ("a.txt", "a"),
        ("sub/b c.txt", "bb"),
        ("sub/über/ç.txt", "ccc"),
        ("blocked", "dd"),
    ] {
        std::fs::write(served.join(p), body).unwrap();
    }
    let s = start(dir.path());
    let out = tempfile::tempdir().unwrap();
    let local = out.path().join("copy");
    // A folder where the file `blocked` should go: it cannot be renamed into place.
    std::fs::create_dir_all(local.join("blocked/inside")).unwrap();
    let url = format!("{}/tree/", s.base);
    let (code, stdout, stderr) = davit(&["get", "-R", &url, local.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "downloaded 3 files (6 bytes) in 4 folders, failed 1",
        "{stderr}"
    );
    assert!(stderr.contains("/tree/blocked: "), "{stderr}");
    for (p, body) in [
        ("a.txt", "a"),
        ("sub/b c.txt", "bb"),
        ("sub/über/ç.txt", "ccc"),
    ] {
        assert_eq!(std::fs::read_to_string(local.join(p)).unwrap(), body, "{p}");
    }
    assert!(local.join("empty").is_dir());
    assert!(
        !local.join(".blocked.davit-part").exists(),
        "no partial file is left"
    );

    // Without a folder named, the collection's own name in the current folder.
    std::fs::remove_dir_all(local.join("blocked")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args(["get", "-R", &format!("{}/tree/sub/", s.base)])
        .current_dir(out.path())
        .env("NETRC", "/nonexistent")
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_eq!(
        std::fs::read_to_string(out.path().join("sub/über/ç.txt")).unwrap(),
        "ccc"
    );
    // A file is not a tree.
    let (code, _, stderr) = davit(&["get", "-R", &format!("{}/tree/a.txt", s.base)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a collection"), "{stderr}");
    stop(s);
}

/// A rule path that repeats the base path most likely means the path without it: warned.
#[test]
fn a_rule_that_repeats_the_base_path_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let mut passwd = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args(["passwd", users.to_str().unwrap(), "ann"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    passwd.stdin.take().unwrap().write_all(b"secret\n").unwrap();
    assert!(passwd.wait().unwrap().success());
    let config = dir.path().join("davit.toml");
    std::fs::write(
        &config,
        "[users.ann]\nrules = [{ path = \"/dav/private\", access = \"read\" }, { path = \"/public\", access = \"read\" }]\n",
    )
    .unwrap();
    let root = dir.path().join("root");
    let args = [
        root.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--base-path",
        "/dav",
        "--htpasswd",
        users.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let s = Served::start(&args, "warn", true);
    let log = s.stop();
    assert!(log.contains("/dav/dav/private"), "{log}");
    assert!(
        !log.contains("/public"),
        "only the rule that repeats the base: {log}"
    );
}

#[test]
fn cors_origin_answers_that_origins_preflights() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(dir.path(), &["--cors-origin", "https://app.example"]);
    let mut sock = std::net::TcpStream::connect(s.base.strip_prefix("http://").unwrap()).unwrap();
    sock.write_all(
        b"OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\
          Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).unwrap();
    let answer = answer.to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 204"), "{answer}");
    assert!(
        answer.contains("access-control-allow-origin: https://app.example"),
        "{answer}"
    );
    stop(s);

    let err = refused_at_start(dir.path(), &["--cors-origin", "null"]);
    assert!(err.contains("CORS origin \"null\""), "{err}");
}

/// `passwd --digest` writes an htdigest line; `serve --htdigest` challenges with Digest
/// and Basic, and lets the user in with either. A realm Digest cannot carry is refused.
#[test]
fn htdigest_users_log_in() {
    use md5::{Digest, Md5};
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("digest-users");
    let mut passwd = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args(["passwd", "--digest", users.to_str().unwrap(), "ann"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    passwd.stdin.take().unwrap().write_all(b"secret\n").unwrap();
    assert!(passwd.wait().unwrap().success());
    let line = std::fs::read_to_string(&users).unwrap();
    assert!(
        line.starts_with("ann:Davit:") && line.trim_end().len() == 42,
        "{line}"
    );

    let s = start_with(dir.path(), &["--htdigest", users.to_str().unwrap()]);
    let addr = s.base.strip_prefix("http://").unwrap().to_owned();
    let exchange = |head: &str| {
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        sock.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        sock.read_to_string(&mut answer).unwrap();
        answer
    };
    let answer = exchange("PROPFIND / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let nonce = answer
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{answer}"));
    let hex = |s: String| -> String {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let digest_get = |password: &str| {
        let ha1 = hex(format!("ann:Davit:{password}"));
        let ha2 = hex("GET:/".to_owned());
        let response = hex(format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
        exchange(&format!(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Digest \
             username=\"ann\", realm=\"Davit\", nonce=\"{nonce}\", uri=\"/\", qop=auth, \
             nc=00000001, cnonce=\"abc\", response=\"{response}\"\r\n\r\n"
        ))
    };
    let answer = digest_get("secret");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = digest_get("wrong");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let url = format!("{}/", s.base);
    let (code, _, stderr) = davit(&["ls", &url, "-u", "ann", "--password", "secret"]);
    assert_eq!(code, 0, "Basic: {stderr}");
    stop(s);

    // Digest only: the client learns Digest from the first 401.
    let s = start_with(
        dir.path(),
        &["--htdigest", users.to_str().unwrap(), "--digest-only"],
    );
    let url = format!("{}/", s.base);
    let (code, _, stderr) = davit(&["ls", &url, "-u", "ann", "--password", "secret"]);
    assert_eq!(code, 0, "Digest: {stderr}");
    stop(s);

    let refused = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_davit"))
            .args([
                "serve",
                dir.path().to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&["--digest-only"]);
    assert!(err.contains("--digest-only"), "{err}");
    let err = refused(&[
        "--htdigest",
        users.to_str().unwrap(),
        "--realm",
        "my \"files\"",
    ]);
    assert!(err.contains("printable ASCII"), "{err}");
}

/// `--metrics-listen` prints where the metrics are, and they count the server's answers.
/// SIGHUP without TLS leaves the server running.
#[test]
fn metrics_listen_serves_the_counters() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_davit"))
        .args([
            "serve",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Read on a thread, so a missing line fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let wait = std::time::Duration::from_secs(20);
    let (first, second) = (
        rx.recv_timeout(wait).unwrap(),
        rx.recv_timeout(wait).unwrap(),
    );
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let metrics = second
        .trim()
        .strip_prefix("metrics on http://")
        .unwrap_or_else(|| panic!("{second:?}"))
        .to_owned();
    assert!(
        metrics.ends_with("/metrics") && !metrics.contains(":0/"),
        "{metrics}"
    );
    assert_eq!(request("PUT", &format!("{base}m.txt"), "x").0, 201);
    let (host, _) = metrics.split_once('/').unwrap();
    let mut sock = std::net::TcpStream::connect(host).unwrap();
    sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("davit_requests_total{method=\"PUT\",code=\"201\"} 1\n"),
        "{answer}"
    );
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        request("PUT", &format!("{base}n.txt"), "x").0,
        201,
        "still serving"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `--hide` leaves matching members out of `ls`, and a pattern that would hide everything
/// is refused before the folder is created.
#[test]
fn hide_leaves_members_out_of_listings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("photo.jpg"), "x").unwrap();
    std::fs::write(dir.path().join("._photo.jpg"), "x").unwrap();
    std::fs::write(dir.path().join(".DS_Store"), "x").unwrap();
    let s = start_with(dir.path(), &["--hide", "._*", "--hide", ".DS_Store"]);
    let (code, stdout, stderr) = davit(&["ls", &format!("{}/", s.base)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("photo.jpg"), "{stdout}");
    assert!(
        !stdout.contains("._photo") && !stdout.contains("DS_Store"),
        "{stdout}"
    );
    let (code, _, _) = davit(&["get", &format!("{}/._photo.jpg", s.base), "-"]);
    assert_eq!(code, 0, "named, a hidden file is served");
    stop(s);

    let err = refused_at_start(dir.path(), &["--hide", "*"]);
    assert!(err.contains("--hide \"*\""), "{err}");
}

/// `passwd --remove` takes a user out of a file, and fails for a user it does not hold.
#[test]
fn passwd_removes_users() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    for user in ["ann", "bob"] {
        let mut passwd = Command::new(env!("CARGO_BIN_EXE_davit"))
            .args(["passwd", users.to_str().unwrap(), user])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        passwd.stdin.take().unwrap().write_all(b"secret\n").unwrap();
        assert!(passwd.wait().unwrap().success());
    }
    let (code, _, stderr) = davit(&["passwd", "--remove", users.to_str().unwrap(), "ann"]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        !text.contains("ann:") && text.starts_with("bob:$argon2id$"),
        "{text}"
    );
    let (code, _, stderr) = davit(&["passwd", "--remove", users.to_str().unwrap(), "ann"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("has no user ann"), "{stderr}");
}

/// A `--trusted-proxy` that is no address or network is refused before anything is made.
#[test]
fn a_trusted_proxy_must_be_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused_at_start(dir.path(), &["--trusted-proxy", "proxy.local"]);
    assert!(err.contains("--trusted-proxy \"proxy.local\""), "{err}");
}
