//! Davit's WebDAV client: one async call per method, and every per-resource result of a
//! `207 Multi-Status`, never just the status line.
//!
//! Calls that can be answered with a 207 (PROPFIND, PROPPATCH, DELETE, COPY, MOVE, bulk
//! upload) return a [`Multistatus`] with one entry per resource; a plain 2xx answer becomes a
//! multistatus of one entry. [`Multistatus::failures`] lists what went wrong and
//! [`Multistatus::is_complete_success`] says whether anything did. A 207 in which every
//! entry failed is an error ([`ClientError::multistatus`] still has the details).
//!
//! # Layout
//! - `multistatus`: the 207 parser and its types.
//! - `error`: [`ClientError`].
//! - `sync`: mirroring a local folder to a collection.
//!
//! # Example
//! ```no_run
//! use davit_client::{Client, Depth};
//! # async fn run() -> Result<(), davit_client::ClientError> {
//! let client = Client::new("http://127.0.0.1:8080")?;
//! client.mkcol("/docs").await?;
//! client.put_bytes("/docs/hello.txt", "hello".into()).await?;
//! match client.delete("/docs").await {
//!     Ok(ms) => assert!(ms.is_complete_success()),
//!     Err(e) => {
//!         for f in e.failures("/docs") {
//!             eprintln!("{} {} {:?}", f.path, f.status, f.condition);
//!         }
//!     }
//! }
//! let listing = client.list("/", Depth::One).await?;
//! for e in &listing.entries {
//!     println!("{}", e.path);
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, PROXY_AUTHORIZATION,
};
use reqwest::{Method, RequestBuilder, StatusCode};

use login::Login;
use redirect::{MAX_REDIRECTS, Redirect};

pub use davit_proto::{DAV_NS, Depth, LockScope, Overwrite, PropName, PropOp, PropValue};

mod download;
pub mod error;
mod login;
mod multipart;
pub mod multistatus;
mod redirect;
mod request_body;
pub mod sync;

pub use download::TreeDownload;
pub use error::ClientError;
pub use multistatus::{Failure, Multistatus, MultistatusResponse, Prop, Propstat};

/// Called with the number of bytes transferred so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What PROPFIND asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropRequest {
    /// All properties.
    AllProp,
    /// Names only.
    PropName,
    /// These properties.
    Props(Vec<PropName>),
}

/// A resource as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Decoded path; a collection's ends in `/`.
    pub path: String,
    /// A collection?
    pub is_collection: bool,
    /// Body length (files).
    pub size: Option<u64>,
    /// Last modification.
    pub modified: Option<SystemTime>,
    /// Entity tag (files).
    pub etag: Option<String>,
}

/// What a listing found: the resources, and those the server reported failing (a 403 for a
/// member the sender may not see, a 507 for a listing cut short), which are not in
/// `entries`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The resources listed.
    pub entries: Vec<Entry>,
    /// The resources listed with an error status.
    pub failures: Vec<Failure>,
}

/// What OPTIONS says the server can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The `DAV` compliance classes and extensions.
    pub dav: Vec<String>,
    /// The `Allow` methods.
    pub allow: Vec<String>,
    /// Whether a collection accepts `multipart/form-data` POSTs (bulk upload).
    pub bulk_upload: bool,
}

/// A lock as granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// The lock token (without `<>`).
    pub token: String,
    /// Exclusive or shared.
    pub scope: LockScope,
    /// `0` or `infinity`.
    pub depth: String,
    /// Seconds granted, `None` for infinite.
    pub timeout: Option<u64>,
}

/// What a PUT did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// True for 201 (created), false for 204/200 (replaced).
    pub created: bool,
    /// The new entity tag, if the server gave one.
    pub etag: Option<String>,
}

/// A GET in progress: headers read, body still to come.
pub struct Download {
    /// `Content-Length`, if known.
    pub len: Option<u64>,
    /// `ETag`.
    pub etag: Option<String>,
    /// `Last-Modified`.
    pub modified: Option<SystemTime>,
    /// The body.
    pub body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("len", &self.len)
            .field("etag", &self.etag)
            .finish()
    }
}

/// A WebDAV server's client. Paths are decoded absolute paths on that server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    origin: String,
    login: Option<Arc<Login>>,
}

/// Builds a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    origin: String,
    credentials: Option<(String, String)>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("origin", &self.origin)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientBuilder {
    /// A user and password, sent as the server asks (Digest when it offers it, else
    /// Basic; over plain HTTP nothing before its first 401).
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Timeout for connecting and for each response to start.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`ClientError`] if the origin is not an `http(s)://host[:port]` URL.
    pub fn build(self) -> Result<Client, ClientError> {
        let (origin, _) = split_url(&self.origin)?;
        // `user:password@` in the URL: credentials like any others, sent only as the
        // server asks (reqwest would send them as Basic at once, and to any host).
        let (origin, from_url) = userinfo(&origin);
        let credentials = self.credentials.or(from_url);
        // reqwest is built without a default crypto provider; ring is the one we ship.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("davit/", env!("CARGO_PKG_VERSION")))
            // Redirects are followed in `exchange`: reqwest's own following sends a Digest
            // login signed for the old URL and cannot send a streamed upload again.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(t) = self.timeout {
            http = http.connect_timeout(t).read_timeout(t);
        }
        let http = http.build().map_err(ClientError::transport)?;
        Ok(Client {
            http,
            origin,
            login: credentials.map(|(user, password)| Arc::new(Login::new(user, password))),
        })
    }
}

/// `origin` without its `user[:password]@`, and those, percent-decoded.
fn userinfo(origin: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return (origin.to_owned(), None);
    };
    let Some((info, host)) = rest.rsplit_once('@') else {
        return (origin.to_owned(), None);
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = info.split_once(':').unwrap_or((info, ""));
    (
        format!("{scheme}://{host}"),
        Some((decode(user), decode(password))),
    )
}

/// Splits a URL into its origin (`http://host:port`) and its decoded path.
///
/// # Errors
/// [`ClientError`] if it is not an `http://` or `https://` URL.
pub fn split_url(url: &str) -> Result<(String, String), ClientError> {
    let bad = || ClientError::usage(format!("`{url}` is not an http:// or https:// URL"));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(bad());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if end == 0 {
        return Err(bad());
    }
    let origin = format!("{}://{}", scheme.to_ascii_lowercase(), &rest[..end]);
    let path = rest[end..].split(['?', '#']).next().unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    Ok((origin, multistatus::href_path(path)))
}

/// One key for a path however its accented names are spelled (Unicode composed or
/// decomposed), without a trailing slash.
pub(crate) fn spelling_key(path: &str) -> String {
    davit_proto::composed(path.trim_end_matches('/')).into_owned()
}

/// Whether `rel` is a relative path of plain names: none empty, `.`, `..` or holding NUL.
pub(crate) fn plain_relative(rel: &str) -> bool {
    rel.split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\0'))
}

/// Bytes of a name kept in its temporary name: 255 (the usual limit of a file name) less
/// the 12 the temporary name adds.
const TEMP_NAME_ROOM: usize = 243;

/// `name` cut to at most `max` bytes, at a character boundary.
fn shortened(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("WebDAV method names are tokens")
}

impl Client {
    /// A client for the server at `origin` (a URL; its path is ignored).
    ///
    /// # Errors
    /// [`ClientError`] if `origin` is not an http(s) URL.
    pub fn new(origin: &str) -> Result<Client, ClientError> {
        Self::builder(origin).build()
    }

    /// A builder for a client of the server at `origin`.
    pub fn builder(origin: &str) -> ClientBuilder {
        ClientBuilder {
            origin: origin.to_owned(),
            credentials: None,
            timeout: None,
        }
    }

    /// The full URL of a decoded path.
    pub fn url(&self, path: &str) -> String {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        format!("{}{}", self.origin, davit_proto::encode_path(&path))
    }

    fn request(&self, method_name: &str, path: &str) -> RequestBuilder {
        self.http
            .request(method(method_name), self.url(path))
            .header(ACCEPT, "application/xml, text/xml;q=0.9, */*;q=0.1")
    }

    /// Sends a request with the credentials, if any, following redirects, and sending it
    /// once more when its 401 says how the server wants them (see [`login`]).
    async fn send(&self, rb: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let mut template = Some(rb.build().map_err(ClientError::transport)?);
        self.exchange(move || {
            // Bodies here are bytes, so a copy can always be made; were one a stream, it
            // would be sent once.
            let req = match template.as_ref().and_then(reqwest::Request::try_clone) {
                Some(copy) => Some(copy),
                None => template.take(),
            };
            async move { Ok(req) }
        })
        .await
    }

    /// [`Client::send`] for a streamed body, which cannot be sent twice: `build` makes the
    /// request afresh for every try.
    async fn send_streamed<F, Fut>(&self, build: F) -> Result<reqwest::Response, ClientError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ClientError>>,
    {
        let build = &build;
        self.exchange(move || async move {
            Ok(Some(
                build().await?.build().map_err(ClientError::transport)?,
            ))
        })
        .await
    }

    /// Sends what `next` makes until an answer is final: a redirect is followed with the
    /// same method and body (only 303 asks for a GET), up to [`MAX_REDIRECTS`], and one
    /// 401 that says how to log in is answered.
    /// Credentials go only to the origin first asked, and a Digest login signs each
    /// request for the URL it is sent to. When `next` can make no more requests, the last
    /// answer is the result.
    async fn exchange<F, Fut>(&self, mut next: F) -> Result<reqwest::Response, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<reqwest::Request>, ClientError>>,
    {
        let mut moved: Option<Redirect> = None;
        let mut redirects = 0;
        let mut challenged = false;
        let mut last = None;
        let mut asked = None;
        loop {
            let Some(mut req) = next().await? else {
                return last.ok_or_else(|| ClientError::usage("no request to send".to_owned()));
            };
            let home = asked.get_or_insert_with(|| req.url().origin()).clone();
            if let Some(to) = &moved {
                to.apply(&mut req);
            }
            let ours = req.url().origin() == home;
            if !ours {
                // Credentials are for the origin first asked only.
                for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE] {
                    req.headers_mut().remove(name);
                }
            }
            // Headers that name the first origin's resources mean nothing elsewhere.
            let names_home = ["destination", "if", "lock-token"]
                .iter()
                .any(|h| req.headers().contains_key(*h));
            let login = self.login.as_ref().filter(|_| ours);
            let sent = login.map(|l| l.authorize(&mut req)).transpose()?;
            let resp = self.execute(req).await?;
            if let (Some(login), Some(sent)) = (login, &sent) {
                login.next_nonce(resp.headers(), sent);
            }
            if redirects < MAX_REDIRECTS
                && let Some(to) = Redirect::of(&resp, moved.as_ref())
                && (to.url().origin() == home || !names_home)
            {
                redirects += 1;
                moved = Some(to);
                last = Some(resp);
                continue;
            }
            if let (Some(login), Some(sent)) = (login, sent)
                && resp.status() == StatusCode::UNAUTHORIZED
                && !challenged
                && login.learn(resp.headers(), &sent)
            {
                challenged = true;
                last = Some(resp);
                continue;
            }
            return Ok(resp);
        }
    }

    async fn execute(&self, req: reqwest::Request) -> Result<reqwest::Response, ClientError> {
        self.http.execute(req).await.map_err(ClientError::transport)
    }

    /// Turns an error status into a [`ClientError`] with the server's condition and reason.
    async fn error(resp: reqwest::Response) -> ClientError {
        let status = resp.status();
        let is_xml = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("xml"));
        // Only a short text or a `D:error` is of use; a page past the bound is not read.
        let body = read_at_most(resp, SHORT_BODY_MAX)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut condition = None;
        let mut message = status.canonical_reason().unwrap_or("error").to_owned();
        if is_xml {
            if let Ok(e) = davit_proto::xml::parse_document(&body, Default::default())
                && e.is(DAV_NS, "error")
            {
                condition = e.elements().next().map(|c| c.local.clone());
            }
        } else if let Ok(text) = std::str::from_utf8(&body) {
            let text = text.trim();
            if !text.is_empty() && text.len() < 500 && !text.starts_with('<') {
                message = text.to_owned();
            }
        }
        ClientError::status(status.as_u16(), condition, message)
    }

    /// The answer of a method that can answer 207: the multistatus, or one entry for a plain
    /// 2xx; a 207 in which everything failed, and any error status, are errors.
    async fn multistatus(path: &str, resp: reqwest::Response) -> Result<Multistatus, ClientError> {
        let status = resp.status();
        if status == StatusCode::MULTI_STATUS {
            // Where the answer came from, after redirects: what relative hrefs are to.
            let at = resp.url().path().to_owned();
            let body = multistatus_body(resp).await?;
            let ms = Multistatus::parse_at(&body, &at)?;
            if ms.all_failed() {
                return Err(ClientError::all_failed(ms));
            }
            return Ok(ms);
        }
        if !status.is_success() {
            return Err(Self::error(resp).await);
        }
        Ok(Multistatus {
            responses: vec![MultistatusResponse {
                href: path.to_owned(),
                path: path.to_owned(),
                status: Some(status.as_u16()),
                propstats: Vec::new(),
                conditions: Vec::new(),
                description: None,
            }],
            description: None,
        })
    }

    /// OPTIONS: what the server can do at `path`.
    ///
    /// # Errors
    /// [`ClientError`] on an error status or a transport failure.
    pub async fn options(&self, path: &str) -> Result<Capabilities, ClientError> {
        let resp = self.send(self.request("OPTIONS", path)).await?;
        if !resp.status().is_success() {
            return Err(Self::error(resp).await);
        }
        let list = |h: &HeaderMap, name: &str| -> Vec<String> {
            h.get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let h = resp.headers();
        Ok(Capabilities {
            dav: list(h, "dav"),
            allow: list(h, "allow"),
            bulk_upload: list(h, "accept-post")
                .iter()
                .any(|t| t.eq_ignore_ascii_case("multipart/form-data")),
        })
    }

    /// PROPFIND.
    ///
    /// # Errors
    /// [`ClientError`] on an error status (404 for a missing resource), a transport failure,
    /// or a body that is not a multistatus.
    pub async fn propfind(
        &self,
        path: &str,
        depth: Depth,
        props: &PropRequest,
    ) -> Result<Multistatus, ClientError> {
        let rb = self
            .request("PROPFIND", path)
            .header("Depth", depth.to_string())
            .header(CONTENT_TYPE, "application/xml; charset=utf-8")
            .body(request_body::propfind(props));
        let resp = self.send(rb).await?;
        Self::multistatus(path, resp).await
    }

    /// The resources at `path` (Depth 0), with its members (Depth 1) or everything below it
    /// (Depth infinity; servers may refuse it), and those the server reported failing.
    ///
    /// # Errors
    /// As [`Client::propfind`].
    pub async fn list(&self, path: &str, depth: Depth) -> Result<Listing, ClientError> {
        let names = [
            "resourcetype",
            "getcontentlength",
            "getlastmodified",
            "getetag",
        ]
        .iter()
        .map(|n| PropName::dav(n))
        .collect();
        let ms = self
            .propfind(path, depth, &PropRequest::Props(names))
            .await?;
        let failures = ms
            .failures()
            .into_iter()
            .filter(|f| f.property.is_none())
            .collect();
        let entries = ms
            .responses
            .iter()
            .filter(|r| r.status.is_none_or(multistatus::is_success))
            .map(|r| {
                let is_collection = r.is_collection();
                let mut path = r.path.clone();
                if is_collection && !path.ends_with('/') {
                    path.push('/');
                }
                Entry {
                    path,
                    is_collection,
                    size: r.content_length(),
                    modified: r.last_modified(),
                    etag: r.etag(),
                }
            })
            .collect();
        Ok(Listing { entries, failures })
    }

    /// Everything below `path`, collection by collection (works where Depth infinity is
    /// refused). The entry for `path` itself comes first, wherever the server listed it.
    /// Only members below the collection listed count, named by plain segments: a listing
    /// that names other paths or `..` (a confused or hostile server) cannot send the walk,
    /// or a later download or deletion, elsewhere, nor round in a loop.
    ///
    /// # Errors
    /// As [`Client::propfind`], for `path` itself or a transport failure. A member
    /// collection the server will not list (or no longer has) is one of the failures.
    pub async fn list_recursive(&self, path: &str) -> Result<Listing, ClientError> {
        let mut out: Vec<Entry> = Vec::new();
        let mut failures = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let mut dirs = vec![path.to_owned()];
        while let Some(dir) = dirs.pop() {
            // Compared composed: a server may answer in another spelling than asked
            // (a Mac's decomposed names for files stored composed, or the reverse).
            let want = spelling_key(&dir);
            if !visited.insert(want.clone()) {
                continue;
            }
            let top = out.is_empty();
            let listing = match self.list(&dir, Depth::One).await {
                Ok(listing) => listing,
                // A member's listing refused, or the member gone since its parent was
                // listed, is that member's failure; only the top's is the whole walk's.
                Err(e) => {
                    let failed = e.failures(&dir);
                    if top || failed.is_empty() {
                        return Err(e);
                    }
                    failures.extend(failed);
                    continue;
                }
            };
            failures.extend(listing.failures);
            for e in listing.entries {
                let name = spelling_key(&e.path);
                if name == want {
                    if top {
                        out.insert(0, e);
                    }
                    continue;
                }
                let below = name
                    .strip_prefix(want.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(plain_relative);
                if !below {
                    continue;
                }
                if e.is_collection {
                    dirs.push(e.path.clone());
                }
                out.push(e);
            }
        }
        Ok(Listing {
            entries: out,
            failures,
        })
    }

    /// PROPPATCH: the instructions in order, all or nothing.
    ///
    /// # Errors
    /// A [`ClientError`] with the multistatus when every property failed (e.g. 403 for a
    /// protected one and 424 for the rest); any error status; a transport failure.
    pub async fn proppatch(&self, path: &str, ops: &[PropOp]) -> Result<Multistatus, ClientError> {
        let rb = self
            .request("PROPPATCH", path)
            .header(CONTENT_TYPE, "application/xml; charset=utf-8")
            .body(request_body::propertyupdate(ops));
        let resp = self.send(rb).await?;
        Self::multistatus(path, resp).await
    }

    /// GET, streaming.
    ///
    /// # Errors
    /// [`ClientError`] on an error status or a transport failure.
    pub async fn get(&self, path: &str) -> Result<Download, ClientError> {
        let resp = self.send(self.request("GET", path)).await?;
        if !resp.status().is_success() {
            return Err(Self::error(resp).await);
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Download {
            len: resp.content_length(),
            etag: header(reqwest::header::ETAG),
            modified: header(reqwest::header::LAST_MODIFIED)
                .and_then(|d| httpdate::parse_http_date(&d).ok()),
            body: Box::pin(resp.bytes_stream().map_err(ClientError::transport)),
        })
    }

    /// GET into a local file, written to a temporary file beside it and renamed into place.
    ///
    /// # Errors
    /// [`ClientError`] on an error status, a transport failure or a local I/O error.
    pub async fn get_to_file(
        &self,
        path: &str,
        local: &Path,
        progress: Option<Progress>,
    ) -> Result<u64, ClientError> {
        use tokio::io::AsyncWriteExt;
        let mut download = self.get(path).await?;
        let dir = local
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("download");
        let tmp = dir.join(format!(".{}.davit-part", shortened(name, TEMP_NAME_ROOM)));
        let io = |e| ClientError::io(format!("writing {}", tmp.display()), e);
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let written = async {
            let mut done = 0u64;
            while let Some(chunk) = download.body.next().await {
                let chunk = chunk?;
                file.write_all(&chunk).await.map_err(io)?;
                done += chunk.len() as u64;
                if let Some(p) = &progress {
                    p(done);
                }
            }
            file.flush().await.map_err(io)?;
            tokio::fs::rename(&tmp, local)
                .await
                .map_err(|e| ClientError::io(format!("renaming into {}", local.display()), e))?;
            Ok(done)
        }
        .await;
        if written.is_err() {
            // Nothing half-written is left behind.
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }

    async fn put_body(
        &self,
        path: &str,
        body: reqwest::Body,
        len: Option<u64>,
    ) -> Result<PutResult, ClientError> {
        let mut rb = self.request("PUT", path).body(body);
        if let Some(len) = len {
            rb = rb.header(reqwest::header::CONTENT_LENGTH, len);
        }
        Self::put_result(self.send(rb).await?).await
    }

    async fn put_result(resp: reqwest::Response) -> Result<PutResult, ClientError> {
        if !resp.status().is_success() {
            return Err(Self::error(resp).await);
        }
        Ok(PutResult {
            created: resp.status() == StatusCode::CREATED,
            etag: resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }

    /// PUT of bytes in memory.
    ///
    /// # Errors
    /// [`ClientError`] on an error status (409 for a missing parent, 423 for a lock) or a
    /// transport failure.
    pub async fn put_bytes(&self, path: &str, data: Bytes) -> Result<PutResult, ClientError> {
        let len = data.len() as u64;
        self.put_body(path, data.into(), Some(len)).await
    }

    /// PUT of a local file, streamed.
    ///
    /// # Errors
    /// As [`Client::put_bytes`], and local I/O errors.
    pub async fn put_file(
        &self,
        path: &str,
        local: &Path,
        progress: Option<Progress>,
    ) -> Result<PutResult, ClientError> {
        // Opened for each try: a login the server asks for again sends the file again.
        let build = || async {
            let file = tokio::fs::File::open(local)
                .await
                .map_err(|e| ClientError::io(format!("opening {}", local.display()), e))?;
            let len = file
                .metadata()
                .await
                .map_err(|e| ClientError::io(format!("reading {}", local.display()), e))?
                .len();
            let stream = counted(
                tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024),
                progress.clone(),
            );
            Ok(self
                .request("PUT", path)
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(stream)))
        };
        let resp = self.send_streamed(build).await?;
        Self::put_result(resp).await
    }

    /// MKCOL.
    ///
    /// # Errors
    /// [`ClientError`] on an error status (405 if something exists, 409 without parent).
    pub async fn mkcol(&self, path: &str) -> Result<(), ClientError> {
        let resp = self.send(self.request("MKCOL", path)).await?;
        if !resp.status().is_success() {
            return Err(Self::error(resp).await);
        }
        Ok(())
    }

    /// DELETE, of a resource or a whole collection.
    ///
    /// # Errors
    /// [`ClientError`] on an error status for the resource itself, or a 207 listing
    /// members that could not be deleted (everything else was).
    pub async fn delete(&self, path: &str) -> Result<Multistatus, ClientError> {
        let resp = self.send(self.request("DELETE", path)).await?;
        Self::multistatus(path, resp).await
    }

    /// COPY to `to` (a decoded path on the same server).
    ///
    /// # Errors
    /// As [`Client::delete`]; 412 when `to` exists and `overwrite` forbids replacing it.
    pub async fn copy(
        &self,
        from: &str,
        to: &str,
        depth: Depth,
        overwrite: Overwrite,
    ) -> Result<Multistatus, ClientError> {
        let rb = self
            .request("COPY", from)
            .header("Destination", self.url(to))
            .header("Depth", depth.to_string())
            .header("Overwrite", overwrite_header(overwrite));
        let resp = self.send(rb).await?;
        Self::multistatus(from, resp).await
    }

    /// MOVE to `to` (a decoded path on the same server).
    ///
    /// # Errors
    /// As [`Client::copy`].
    pub async fn move_to(
        &self,
        from: &str,
        to: &str,
        overwrite: Overwrite,
    ) -> Result<Multistatus, ClientError> {
        let rb = self
            .request("MOVE", from)
            .header("Destination", self.url(to))
            .header("Overwrite", overwrite_header(overwrite));
        let resp = self.send(rb).await?;
        Self::multistatus(from, resp).await
    }

    /// LOCK: a new write lock. `timeout` of `None` asks for an infinite one.
    ///
    /// # Errors
    /// [`ClientError`] on an error status (423 when a conflicting lock is held) or a
    /// response without a `Lock-Token` header. What the body does not show of the lock is
    /// taken as asked.
    pub async fn lock(
        &self,
        path: &str,
        scope: LockScope,
        depth: Depth,
        timeout: Option<u64>,
        owner: Option<&str>,
    ) -> Result<LockInfo, ClientError> {
        let timeout_header = timeout.map_or("Infinite".to_owned(), |t| format!("Second-{t}"));
        let rb = self
            .request("LOCK", path)
            .header("Depth", depth.to_string())
            .header("Timeout", timeout_header)
            .header(CONTENT_TYPE, "application/xml; charset=utf-8")
            .body(request_body::lockinfo(scope, owner));
        let resp = self.send(rb).await?;
        if resp.status() == StatusCode::MULTI_STATUS {
            let at = resp.url().path().to_owned();
            let body = multistatus_body(resp).await?;
            return Err(ClientError::all_failed(Multistatus::parse_at(&body, &at)?));
        }
        if !resp.status().is_success() {
            return Err(Self::error(resp).await);
        }
        let token = resp
            .headers()
            .get("lock-token")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| davit_proto::parse_lock_token(v).ok())
            .ok_or_else(|| {
                ClientError::protocol("the LOCK answer has no Lock-Token header".to_owned())
            })?;
        let body = read_at_most(resp, SHORT_BODY_MAX)
            .await
            .map_err(ClientError::transport)?
            .unwrap_or_default();
        let asked = LockInfo {
            token,
            scope,
            depth: depth.to_string(),
            timeout,
        };
        Ok(request_body::lock_info(&body, asked))
    }

    /// UNLOCK.
    ///
    /// # Errors
    /// [`ClientError`] on an error status (409 when the token does not name a lock on
    /// `path`).
    pub async fn unlock(&self, path: &str, token: &str) -> Result<(), ClientError> {
        let token = token.trim().trim_start_matches('<').trim_end_matches('>');
        let rb = self
            .request("UNLOCK", path)
            .header("Lock-Token", format!("<{token}>"));
        let resp = self.send(rb).await?;
        if !resp.status().is_success() {
            return Err(Self::error(resp).await);
        }
        Ok(())
    }

    /// Bulk upload: the local files, in one `multipart/form-data` POST to the collection
    /// `dir`, stored under the given names. One multistatus entry per file. Servers that do
    /// not offer it (see [`Capabilities::bulk_upload`]) need one PUT per file.
    ///
    /// # Errors
    /// [`ClientError`] on an error status, a transport failure, or when every file failed.
    pub async fn upload_many(
        &self,
        dir: &str,
        files: &[(String, PathBuf)],
        progress: Option<Progress>,
    ) -> Result<Multistatus, ClientError> {
        // Encoded for each try: a login the server asks for again sends the files again.
        let build = || async {
            let (content_type, len, stream) = multipart::encode(files).await?;
            Ok(self
                .request("POST", dir)
                .header(CONTENT_TYPE, content_type)
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(counted(
                    stream,
                    progress.clone(),
                ))))
        };
        let resp = self.send_streamed(build).await?;
        Self::multistatus(dir, resp).await
    }
}

/// Bytes read of a body that should be short: an error's condition or reason, a LOCK's
/// `lockdiscovery`.
const SHORT_BODY_MAX: usize = 64 * 1024;
/// Bytes of a 207 answer read: a Depth 1 listing of 500,000 members fits.
const MULTISTATUS_MAX: usize = 256 * 1024 * 1024;

/// The body of `resp`, or `None` once it is past `limit` bytes (the rest is not read).
async fn read_at_most(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Option<Bytes>, reqwest::Error> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// A 207 answer's body, bounded: a server that never stops cannot take all the memory.
async fn multistatus_body(resp: reqwest::Response) -> Result<Bytes, ClientError> {
    read_at_most(resp, MULTISTATUS_MAX)
        .await
        .map_err(ClientError::transport)?
        .ok_or_else(|| {
            ClientError::protocol(format!(
                "the multistatus answer is larger than {} MiB",
                MULTISTATUS_MAX >> 20
            ))
        })
}

fn overwrite_header(o: Overwrite) -> &'static str {
    match o {
        Overwrite::Allow => "T",
        Overwrite::Forbid => "F",
    }
}

/// Reports the running byte count of a stream.
fn counted<S, E>(
    stream: S,
    progress: Option<Progress>,
) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
{
    let mut done = 0u64;
    stream.map(move |chunk| {
        if let (Ok(c), Some(p)) = (&chunk, &progress) {
            done += c.len() as u64;
            p(done);
        }
        chunk
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn temporary_names_stay_within_a_file_name() {
        assert_eq!(shortened("abc", 10), "abc");
        assert_eq!(shortened("abcdef", 3), "abc");
        // "é" is two bytes: a cut inside it moves back before it.
        assert_eq!(shortened("aé", 2), "a");
        let long = "é".repeat(200);
        assert!(format!(".{}.davit-part", shortened(&long, TEMP_NAME_ROOM)).len() <= 255);
    }

    use super::*;

    #[test]
    fn split_url_table() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/a%20b/").unwrap(),
            ("http://127.0.0.1:8080".into(), "/a b/".into())
        );
        assert_eq!(
            split_url("HTTPS://h").unwrap(),
            ("https://h".into(), "/".into())
        );
        assert_eq!(split_url("http://h?x").unwrap().1, "/");
        for bad in ["ftp://h/x", "h/x", "http:///x", "http://"] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_encodes_paths() {
        let c = Client::new("http://h:1/ignored").unwrap();
        assert_eq!(c.url("/a b/€#"), "http://h:1/a%20b/%E2%82%AC%23");
        assert_eq!(c.url("x/"), "http://h:1/x/");
    }
}
