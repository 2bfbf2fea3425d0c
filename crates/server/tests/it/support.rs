//! A real server on port 0 per test, a client for it, and a multistatus reader.

use std::sync::Arc;

use davit_proto::xml::{Element, XmlLimits, parse_document};
use davit_server::{Backends, DavServer, ServerConfig, serve};
use davit_store::fs::FsStorage;
use davit_store::memory::{MemoryLockStore, MemoryPropertyStore, MemoryStorage};
use davit_store::sqlite::SqliteStore;
use davit_store::testing::FaultyStorage;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The backends a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Fs,
}

pub struct TestServer {
    pub base: String,
    pub client: Client,
    /// The served folder (fs backend).
    pub root: Option<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(kind: Kind) -> Self {
        Self::start_with(kind, ServerConfig::default()).await
    }

    pub async fn start_with(kind: Kind, config: ServerConfig) -> Self {
        match kind {
            Kind::Memory => {
                let backends = Backends {
                    storage: Arc::new(MemoryStorage::new()),
                    props: Arc::new(MemoryPropertyStore::new()),
                    locks: Arc::new(MemoryLockStore::new()),
                };
                Self::with_backends(backends, config, None).await
            }
            Kind::Fs => {
                let dir = tempfile::tempdir().unwrap();
                let backends = fs_backends(dir.path());
                Self::with_backends(backends, config, Some(dir)).await
            }
        }
    }

    /// A server whose storage cannot remove or copy names containing `stuck` and cannot read
    /// names containing `unreadable`.
    pub async fn faulty(kind: Kind, stuck: &str, unreadable: &str) -> Self {
        Self::with_faults(kind, |f| f.stuck(stuck).fail_reads(unreadable)).await
    }

    /// A server whose storage has the faults `faults` adds.
    pub async fn with_faults(
        kind: Kind,
        faults: impl FnOnce(FaultyStorage) -> FaultyStorage,
    ) -> Self {
        let (backends, root) = match kind {
            Kind::Memory => (
                Backends {
                    storage: Arc::new(MemoryStorage::new()),
                    props: Arc::new(MemoryPropertyStore::new()),
                    locks: Arc::new(MemoryLockStore::new()),
                },
                None,
            ),
            Kind::Fs => {
                let dir = tempfile::tempdir().unwrap();
                (fs_backends(dir.path()), Some(dir))
            }
        };
        let storage = faults(FaultyStorage::new(backends.storage));
        let backends = Backends {
            storage: Arc::new(storage),
            ..backends
        };
        Self::with_backends(backends, ServerConfig::default(), root).await
    }

    pub async fn with_backends(
        backends: Backends,
        config: ServerConfig,
        root: Option<TempDir>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Arc::new(DavServer::new(backends, config));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, server, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        // The workspace builds reqwest without a default TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        TestServer {
            base: format!("http://{addr}"),
            client: Client::new(),
            root,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Drops the future of `serve` (as an embedder aborting its task does), without a stop.
    pub fn abort(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Stops accepting and waits until the server has drained.
    pub async fn stop(mut self) -> Option<TempDir> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.root.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.client.request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            self.url(path),
        )
    }

    pub async fn put(&self, path: &str, body: &'static str) -> StatusCode {
        self.req("PUT", path)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn mkcol(&self, path: &str) -> StatusCode {
        self.req("MKCOL", path).send().await.unwrap().status()
    }

    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let r = self.req("GET", path).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// PROPFIND with a body; asserts 207 and returns the parsed multistatus.
    pub async fn propfind(&self, path: &str, depth: &str, body: &str) -> Multistatus {
        let r = self
            .req("PROPFIND", path)
            .header("Depth", depth)
            .header("Content-Type", "application/xml")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::MULTI_STATUS, "PROPFIND {path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/xml"), "{ct}");
        Multistatus::parse(&r.text().await.unwrap())
    }

    pub async fn proppatch(&self, path: &str, body: &str) -> reqwest::Response {
        self.req("PROPPATCH", path)
            .header("Content-Type", "application/xml")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

pub fn fs_backends(dir: &std::path::Path) -> Backends {
    std::fs::create_dir_all(dir.join(".davit")).unwrap();
    let store = Arc::new(SqliteStore::open(dir.join(".davit/davit.sqlite")).unwrap());
    Backends {
        storage: Arc::new(FsStorage::open(dir).unwrap().hide(".davit")),
        props: Arc::clone(&store) as _,
        locks: store,
    }
}

/// Runs an `async fn(TestServer)` once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::support::{Kind, TestServer};
                #[tokio::test]
                async fn memory() {
                    super::$name(TestServer::start(Kind::Memory).await).await;
                }
                #[tokio::test]
                async fn fs() {
                    super::$name(TestServer::start(Kind::Fs).await).await;
                }
            }
        )*
    };
}

pub const PROPFIND_ALL: &str =
    r#"<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>"#;

/// One `response` of a multistatus.
#[derive(Debug, Clone)]
pub struct Resp {
    pub href: String,
    /// The response-level status, for status-only responses.
    pub status: Option<u16>,
    /// `(namespace, local, status, element)` for every property in every propstat.
    pub props: Vec<(String, String, u16, Element)>,
    /// Condition names under `error`, response-level or propstat-level.
    pub conditions: Vec<String>,
    pub description: Option<String>,
}

impl Resp {
    pub fn prop(&self, ns: &str, local: &str) -> Option<(u16, &Element)> {
        self.props
            .iter()
            .find(|(n, l, _, _)| n == ns && l == local)
            .map(|(_, _, s, e)| (*s, e))
    }

    /// The text of a property found with 200.
    pub fn text(&self, ns: &str, local: &str) -> Option<String> {
        match self.prop(ns, local) {
            Some((200, e)) => Some(e.text()),
            _ => None,
        }
    }

    pub fn status_of(&self, ns: &str, local: &str) -> Option<u16> {
        self.prop(ns, local).map(|(s, _)| s)
    }
}

#[derive(Debug)]
pub struct Multistatus {
    pub responses: Vec<Resp>,
}

fn status_code(line: &str) -> u16 {
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

impl Multistatus {
    pub fn parse(body: &str) -> Self {
        let root = parse_document(body.as_bytes(), XmlLimits::default()).expect(body);
        assert!(root.is("DAV:", "multistatus"), "{body}");
        let mut responses = Vec::new();
        for r in root.elements().filter(|e| e.is("DAV:", "response")) {
            let mut resp = Resp {
                href: String::new(),
                status: None,
                props: Vec::new(),
                conditions: Vec::new(),
                description: None,
            };
            for c in r.elements() {
                match c.local.as_str() {
                    "href" => resp.href = c.text(),
                    "status" => resp.status = Some(status_code(&c.text())),
                    "error" => resp
                        .conditions
                        .extend(c.elements().map(|e| e.local.clone())),
                    "responsedescription" => resp.description = Some(c.text()),
                    "propstat" => {
                        let status = c
                            .elements()
                            .find(|e| e.is("DAV:", "status"))
                            .map(|e| status_code(&e.text()))
                            .expect("propstat has a status");
                        if let Some(err) = c.elements().find(|e| e.is("DAV:", "error")) {
                            resp.conditions
                                .extend(err.elements().map(|e| e.local.clone()));
                        }
                        for prop in c.elements().filter(|e| e.is("DAV:", "prop")) {
                            for p in prop.elements() {
                                resp.props.push((
                                    p.namespace.clone(),
                                    p.local.clone(),
                                    status,
                                    p.clone(),
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
            responses.push(resp);
        }
        Multistatus { responses }
    }

    pub fn get(&self, href: &str) -> &Resp {
        self.responses
            .iter()
            .find(|r| r.href == href)
            .unwrap_or_else(|| panic!("no response for {href} in {:#?}", self.hrefs()))
    }

    pub fn hrefs(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.responses.iter().map(|r| r.href.as_str()).collect();
        v.sort();
        v
    }
}

/// A folder server whose look-ups are remembered long enough that no test sees a change
/// made to the folder directly through them.
pub async fn remembering_server() -> (TestServer, std::path::PathBuf) {
    fs_server_remembering(std::time::Duration::from_secs(600)).await
}

/// A folder server whose look-ups are remembered for `ttl` (zero: never).
pub async fn fs_server_remembering(ttl: std::time::Duration) -> (TestServer, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut backends = fs_backends(&root);
    let storage = FsStorage::open(&root).unwrap().hide(".davit");
    backends.storage = Arc::new(storage.cache_ttl(ttl));
    let s = TestServer::with_backends(backends, ServerConfig::default(), Some(dir)).await;
    (s, root)
}
