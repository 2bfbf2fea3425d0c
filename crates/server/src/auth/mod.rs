//! Authentication (HTTP Basic against an htpasswd file, Basic and Digest against an htdigest
//! file) and authorization (per-user rules).
//!
//! Every request passes [`Auth::authenticate`] before anything else is looked at, and
//! [`authorize`] once its paths are decoded, before preconditions are evaluated, so a client
//! without access learns nothing about what exists (not even through 404 or 412).
//!
//! Password checks are slow on purpose; they run on the blocking pool, a few at a time
//! (argon2 takes 19 MiB each), and a correct password is remembered as a keyed digest so a
//! client sending the same credentials on every request pays for the hash once. A wrong
//! password is answered after a delay, and an address with too many failures in a minute
//! gets 429 without its password being checked. An unknown user costs the same hash as a
//! known one, so timing does not tell which users exist.

mod apr1;
mod digest;
mod htpasswd;
mod limiter;
mod rules;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode, Uri};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

pub use digest::{Htdigest, realm_fits_digest, upsert_digest_line};
pub use htpasswd::{Htpasswd, hash_password, upsert_line};
pub use rules::{Access, AccessPolicy, UserRules};

use crate::error::DavError;
use crate::request::DavRequest;
use davit_proto::DigestCredentials;
use digest::{NONCE_LIFETIME, NonceState, Nonces};
use htpasswd::StoredHash;
use limiter::FailureLimiter;

/// A problem with the authentication setup (found at start, never per request).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The htpasswd file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the htpasswd file is wrong.
    #[error("{path} line {line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An access rule is wrong.
    #[error("access rules: {0}")]
    Config(String),
    /// Hashing a password failed.
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// Password checks running at once; more wait their turn.
const CONCURRENT_CHECKS: usize = 4;

/// Users, their rules, and the state that slows guessing down.
pub struct Auth {
    realm: String,
    users: Htpasswd,
    policy: AccessPolicy,
    limiter: FailureLimiter,
    failure_delay: Duration,
    checks: Semaphore,
    /// Per user, SHA-256(key, user, password) of the last password that verified.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    cache_key: [u8; 32],
    /// Checked instead when the user does not exist, so both cost the same.
    decoy: StoredHash,
    /// Digest logins, with an htdigest file.
    digest: Option<DigestLogins>,
    nonce_lifetime: Duration,
    /// Whether Basic logins are offered and taken.
    basic: bool,
}

struct DigestLogins {
    users: Htdigest,
    nonces: Nonces,
    /// Checked instead when the user does not exist.
    decoy: [u8; 16],
    replays: digest::Replays,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Authentication against `users`, access by `policy`. Ten failures per client
    /// address per minute, each answered after 250 ms.
    ///
    /// # Errors
    /// When the system has no randomness (for the decoy hash and the cache key).
    pub fn new(users: Htpasswd, policy: AccessPolicy) -> Result<Self, AuthError> {
        let mut cache_key = [0u8; 32];
        getrandom::fill(&mut cache_key).map_err(|e| AuthError::Hash(e.to_string()))?;
        let decoy_password = base64::engine::general_purpose::STANDARD.encode(cache_key);
        let decoy = StoredHash::parse(&hash_password(&decoy_password)?)
            .ok_or_else(|| AuthError::Hash("argon2 produced an unknown form".into()))?;
        Ok(Auth {
            realm: "Davit".into(),
            users,
            policy,
            limiter: FailureLimiter::new(10, Duration::from_secs(60)),
            failure_delay: Duration::from_millis(250),
            checks: Semaphore::new(CONCURRENT_CHECKS),
            verified: Mutex::new(HashMap::new()),
            cache_key,
            decoy,
            digest: None,
            nonce_lifetime: NONCE_LIFETIME,
            basic: true,
        })
    }

    /// Also lets the users of `users` log in, with Digest or Basic. Their realm becomes
    /// the realm of every challenge, since their hashes hold it.
    pub fn digest_users(mut self, users: Htdigest) -> Self {
        self.realm = users.realm().to_owned();
        let decoy = digest::ha1("", "", &self.cache_key);
        if self.users.is_empty() {
            // Without htpasswd users a Basic login costs an MD5; so must an unknown user.
            self.decoy = StoredHash::Ha1 {
                prefix: String::new(),
                ha1: decoy,
            };
        }
        self.digest = Some(DigestLogins {
            users,
            nonces: Nonces::new(&self.cache_key),
            decoy,
            replays: digest::Replays::default(),
        });
        self
    }

    /// Digest logins only: Basic is neither offered nor taken, so no client sends a
    /// password in clear (those without Digest cannot log in). Needs
    /// [`Auth::digest_users`].
    pub fn digest_only(mut self) -> Self {
        self.basic = false;
        self
    }

    /// Whether Basic is offered and taken: unless Digest only was asked for, and there
    /// are Digest users to log in instead.
    fn basic_on(&self) -> bool {
        self.basic || self.digest.is_none()
    }

    /// How long a Digest nonce is good for (5 minutes unless set).
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// The realm shown in the login prompt.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// At most `max` failed logins per client address per `window`.
    pub fn failure_limit(mut self, max: u32, window: Duration) -> Self {
        self.limiter = FailureLimiter::new(max, window);
        self
    }

    /// How long a wrong password waits before its 401, counted from when its check began
    /// (so the time of the check itself does not show when it is shorter).
    pub fn failure_delay(mut self, delay: Duration) -> Self {
        self.failure_delay = delay;
        self
    }

    /// Who sent the request: a user with a verified password, or anonymous when the
    /// request has no credentials and anonymous access is allowed.
    pub(crate) async fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        client: IpAddr,
    ) -> Result<Principal, DavError> {
        let value = headers.get(AUTHORIZATION);
        if let Some(logins) = &self.digest
            && let Some(value) = value.filter(|v| has_scheme(v, b"digest"))
        {
            return self.digest_login(logins, value, method, uri, client).await;
        }
        // Credentials in another scheme (a token a proxy added) are no login: the request
        // is anonymous, or challenged for one.
        let basic = value.filter(|v| self.basic_on() && has_scheme(v, b"basic"));
        let Some(value) = basic else {
            if self.policy.anonymous_allowed() {
                return Ok(Principal {
                    user: None,
                    rules: Some(Arc::clone(&self.policy.anonymous)),
                    next_nonce: None,
                });
            }
            return Err(self.challenge("authentication required"));
        };
        let Some((user, password)) = basic_credentials(value) else {
            return Err(self.challenged(
                DavError::bad_request("Authorization must be Basic with base64 of user:password"),
                false,
            ));
        };
        // A blocked address gets 429 for every login, the right ones too: were a password
        // that verified before let in, each guess would learn at once whether it is one.
        if let Some(wait) = self.limiter.blocked(client, Instant::now()) {
            return Err(self.too_many(client, &user, wait));
        }
        let digest = self.digest(&user, &password);
        if self.remembered(&user, &digest) {
            return Ok(self.principal(user));
        }
        // Counted as a failure until it verifies, so guesses sent at once (many connections,
        // HTTP/2 streams) all count against the limit before any hash is computed.
        self.limiter.record_failure(client, Instant::now());
        let stored = self.users.get(&user).cloned().or_else(|| {
            let logins = self.digest.as_ref()?;
            let ha1 = *logins.users.get(&user)?;
            Some(StoredHash::Ha1 {
                prefix: format!("{user}:{}:", logins.users.realm()),
                ha1,
            })
        });
        let known = stored.is_some();
        // An htdigest user verifies in a moment; beside htpasswd users the slow decoy runs
        // too, so the time taken does not tell that the user exists.
        let pad = matches!(stored, Some(StoredHash::Ha1 { .. })).then(|| self.decoy.clone());
        let hash = stored.unwrap_or_else(|| self.decoy.clone());
        let started = Instant::now();
        let ok = {
            let _permit = self
                .checks
                .acquire()
                .await
                .map_err(|_| DavError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
            let password = password.clone();
            tokio::task::spawn_blocking(move || {
                let ok = hash.verify(password.as_bytes());
                if let Some(pad) = pad {
                    pad.verify(password.as_bytes());
                }
                ok
            })
            .await
            .unwrap_or(false)
        };
        if ok && known {
            self.limiter.forgive(client, Instant::now());
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(user.clone(), digest);
            return Ok(self.principal(user));
        }
        // Debug formatting: a user name is the client's text, and must not forge log lines.
        tracing::warn!(%client, user = ?user, known, "login failed");
        // Counted from before the hash: a user's hash faster than the decoy (an `$apr1$`
        // line beside the argon2 decoy) would otherwise show that the user exists.
        tokio::time::sleep_until((started + self.failure_delay).into()).await;
        Err(self.challenge("wrong user name or password"))
    }

    /// A Digest login (RFC 7616 §3.4): the response must prove the user's password for
    /// this request's method and target, under a nonce issued here. A right response
    /// under an old nonce (or one from before a restart) is asked again with `stale=true`,
    /// which clients answer without prompting.
    async fn digest_login(
        &self,
        logins: &DigestLogins,
        value: &HeaderValue,
        method: &Method,
        uri: &Uri,
        client: IpAddr,
    ) -> Result<Principal, DavError> {
        // UTF-8, not just ASCII: user names may be anything the htdigest file holds.
        let Some(creds) = std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|v| DigestCredentials::parse(v).ok())
        else {
            return Err(self.challenged(
                DavError::bad_request("malformed Digest credentials in Authorization"),
                false,
            ));
        };
        // The target signed must be this request's, or a captured login would open any URL.
        if !signed_for(&creds.uri, uri) {
            return Err(DavError::bad_request(
                "the uri of the Digest credentials is not the request's target",
            ));
        }
        let offered = creds.realm == self.realm
            && !creds.userhash
            && creds
                .algorithm
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
            && creds
                .qop
                .as_deref()
                .is_some_and(|q| q.eq_ignore_ascii_case("auth"));
        let (true, Some(nc), Some(cnonce)) = (offered, &creds.nc, &creds.cnonce) else {
            return Err(self.challenge(
                "Digest logins here use MD5 with qop=auth, in the realm challenged with",
            ));
        };
        // As with Basic: a blocked address gets 429 for every login, right or wrong.
        if let Some(wait) = self.limiter.blocked(client, Instant::now()) {
            return Err(self.too_many(client, &creds.username, wait));
        }
        let stored = logins.users.get(&creds.username);
        let expected = digest::expected_response(
            stored.unwrap_or(&logins.decoy),
            &creds.nonce,
            nc,
            cnonce,
            method.as_str(),
            &creds.uri,
        );
        let right = constant_time_eq(
            expected.as_bytes(),
            creds.response.to_ascii_lowercase().as_bytes(),
        ) && stored.is_some();
        if !right {
            self.limiter.record_failure(client, Instant::now());
            tracing::warn!(%client, user = ?creds.username, known = stored.is_some(), "login failed");
            tokio::time::sleep(self.failure_delay).await;
            return Err(self.challenge("wrong user name or password"));
        }
        match logins
            .nonces
            .check(&creds.nonce, SystemTime::now(), self.nonce_lifetime)
        {
            NonceState::Fresh { age } => {
                if !logins.replays.first_use(
                    &creds.nonce,
                    &creds.response,
                    SystemTime::now(),
                    self.nonce_lifetime,
                ) {
                    // A request sent again as it was: a new nonce needs the password.
                    tracing::warn!(%client, user = ?creds.username, "a Digest response was sent again");
                    return Err(self.challenged(
                        DavError::new(
                            StatusCode::UNAUTHORIZED,
                            "this Digest response was used before",
                        ),
                        true,
                    ));
                }
                tracing::debug!(user = ?creds.username, "Digest login");
                let mut principal = self.principal(creds.username);
                if age * 2 > self.nonce_lifetime.as_secs() {
                    let next = logins.nonces.issue(SystemTime::now());
                    principal.next_nonce =
                        HeaderValue::from_str(&format!("nextnonce=\"{next}\"")).ok();
                }
                Ok(principal)
            }
            NonceState::Stale | NonceState::Unknown => Err(self.challenged(
                DavError::new(StatusCode::UNAUTHORIZED, "the Digest nonce has expired"),
                true,
            )),
        }
    }

    fn too_many(&self, client: IpAddr, user: &str, wait: Duration) -> DavError {
        tracing::warn!(%client, user = ?user, "login refused: too many failures from this address");
        DavError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins from this address; try again later",
        )
        .with_header(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)))
    }

    fn principal(&self, user: String) -> Principal {
        Principal {
            rules: Some(Arc::clone(self.policy.for_user(&user))),
            user: Some(user.into()),
            next_nonce: None,
        }
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.cache_key)
            .chain_update(user.as_bytes())
            .chain_update([0u8])
            .chain_update(password.as_bytes())
            .finalize()
            .into()
    }

    fn remembered(&self, user: &str, digest: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .is_some_and(|d| constant_time_eq(d, digest))
    }

    /// `err` with the challenges: Digest (with a fresh nonce, `stale` as given) when
    /// there are Digest users, then Basic. Clients take the strongest they know.
    fn challenged(&self, err: DavError, stale: bool) -> DavError {
        let realm: String = self
            .realm
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        let mut err = err;
        if let Some(logins) = &self.digest {
            let nonce = logins.nonces.issue(SystemTime::now());
            let stale = if stale { ", stale=true" } else { "" };
            if let Ok(v) = HeaderValue::from_str(&format!(
                "Digest realm=\"{realm}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\", \
                 charset=UTF-8, userhash=false{stale}"
            )) {
                err = err.with_header(WWW_AUTHENTICATE, v);
            }
        }
        if !self.basic_on() {
            return err;
        }
        let basic = HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"Davit\""));
        err.with_header(WWW_AUTHENTICATE, basic)
    }

    fn challenge(&self, reason: &'static str) -> DavError {
        self.challenged(DavError::new(StatusCode::UNAUTHORIZED, reason), false)
    }

    pub(crate) fn challenge_for(&self, principal: &Principal) -> Option<DavError> {
        principal
            .user
            .is_none()
            .then(|| self.challenge("authentication required"))
    }
}

/// The sender of a request and what they may do.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) user: Option<Arc<str>>,
    /// `None`: no rules apply (the server runs without authentication).
    rules: Option<Arc<UserRules>>,
    /// `nextnonce="..."`, for an `Authentication-Info` header, when a Digest login used a
    /// nonce past half its life.
    pub(crate) next_nonce: Option<HeaderValue>,
}

impl Principal {
    /// The sender's rules, when the server authenticates.
    pub(crate) fn rules(&self) -> Option<&Arc<UserRules>> {
        self.rules.as_ref()
    }

    /// Everything allowed: the server runs without authentication. Costs nothing, as it is
    /// made for every request then.
    pub(crate) fn unrestricted() -> Self {
        Principal {
            user: None,
            rules: None,
            next_nonce: None,
        }
    }
}

/// Refuses the request when its sender lacks the access its method needs on its target
/// (and, for COPY and MOVE, on the destination). Anonymous requests that fall short get a
/// 401 challenge, so the client can log in; users get 403.
pub(crate) fn authorize(
    auth: Option<&Auth>,
    req: &DavRequest,
    base: &davit_proto::BasePath,
) -> Result<(), DavError> {
    let principal = &req.principal;
    let (Some(auth), Some(rules)) = (auth, &principal.rules) else {
        return Ok(());
    };
    let deny = |what: &str| {
        auth.challenge_for(principal).unwrap_or_else(|| {
            DavError::forbidden(format!("{what}: your account does not allow it"))
        })
    };
    let method = req.method().as_str();
    let target = &req.path;
    let needed = match method {
        // The root answers anyone logged in: clients probe it before anything else.
        "OPTIONS" if target.is_root() => Access::None,
        "OPTIONS" | "GET" | "HEAD" | "PROPFIND" | "COPY" => Access::Read,
        _ => Access::Write,
    };
    // Methods that change a whole tree need write access everywhere in it.
    let whole_tree = match method {
        "DELETE" | "MOVE" => true,
        "LOCK" => req.header(crate::request::DEPTH)?.as_deref() != Some("0"),
        _ => false,
    };
    let has = if whole_tree {
        rules.tree_access(target)
    } else {
        rules.access(target)
    };
    // OPTIONS on the root needs a login where anonymous access is off, and nothing more.
    if has < needed || (principal.user.is_none() && has == Access::None) {
        return Err(deny(&format!("{method} {target}")));
    }
    // An If header's tagged lists ask about other resources' state: only those the
    // sender may read.
    if let Some(tagged) = req.if_header.as_ref().and_then(|h| {
        h.lists
            .iter()
            .filter(|l| !l.unserved)
            .filter_map(|l| l.resource.as_ref())
            .find(|r| rules.access(r) < Access::Read)
    }) {
        return Err(deny(&format!("an If header about {tagged}")));
    }
    // Adding or removing a member changes its folder: no folder where the user only
    // reads gains or loses members (nor does anything above the user's root).
    let changes_parent = |path: &davit_proto::ResourcePath| {
        path.parent()
            .is_some_and(|parent| rules.access(&parent) < Access::Write)
    };
    if matches!(method, "DELETE" | "MOVE" | "MKCOL") && changes_parent(target) {
        return Err(deny(&format!(
            "{method} {target} (in a folder you may only read)"
        )));
    }
    if matches!(method, "COPY" | "MOVE")
        && let Ok(dest) = req.destination(base)
        && (rules.tree_access(&dest.path) < Access::Write || changes_parent(&dest.path))
    {
        return Err(deny(&format!("{method} to {}", dest.path)));
    }
    Ok(())
}

/// For PUT and LOCK, which create what they name where nothing is: in a folder the user
/// may only read, that adds a member, as the MKCOL [`authorize`] refuses would. Storage is
/// asked only then; replacing or locking what exists changes no folder.
pub(crate) async fn authorize_creation(
    auth: Option<&Auth>,
    req: &DavRequest,
    storage: &dyn davit_store::Storage,
) -> Result<(), DavError> {
    let principal = &req.principal;
    let (Some(auth), Some(rules)) = (auth, &principal.rules) else {
        return Ok(());
    };
    let in_read_only = req
        .path
        .parent()
        .is_some_and(|parent| rules.access(&parent) < Access::Write);
    if !in_read_only {
        return Ok(());
    }
    let method = req.method();
    match storage.metadata(&req.path).await {
        Err(davit_store::StorageError::NotFound) => {
            Err(auth.challenge_for(principal).unwrap_or_else(|| {
                DavError::forbidden(format!(
                    "{method} {} (would create it in a folder you may only read)",
                    req.path
                ))
            }))
        }
        _ => Ok(()),
    }
}

/// Whether `value` is credentials of the scheme `name` (any case), with a space or tab
/// after the name.
fn has_scheme(value: &HeaderValue, name: &[u8]) -> bool {
    let v = value.as_bytes();
    v.get(..name.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(name))
        && matches!(v.get(name.len()), Some(b' ' | b'\t'))
}

/// Whether `signed` (a Digest `uri`) names the request target of `uri`: the same text, the
/// absolute form of it, or the same once percent-decoded (a client or proxy that encodes
/// other characters), as Apache also accepts.
fn signed_for(signed: &str, uri: &Uri) -> bool {
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    if signed == target {
        return true;
    }
    let signed = match signed.parse::<Uri>() {
        Ok(absolute) if absolute.scheme().is_some() => absolute
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        _ => signed.to_owned(),
    };
    // Path and query compared apart: decoded whole, `/r%3F1` (a file named `r?1`) would
    // sign for `/r?1`, the resource `/r`.
    let split = |s: &str| -> (Vec<u8>, String) {
        let (path, query) = s.split_once('?').map_or((s, None), |(p, q)| (p, Some(q)));
        let path = percent_encoding::percent_decode_str(path).collect();
        (path, query.map(|q| format!("?{q}")).unwrap_or_default())
    };
    signed == target || split(&signed) == split(target)
}

/// User and password from `Basic base64(user:password)`.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Compares without an early exit, so the time taken does not tell how much matched.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_table() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let table: [(String, Option<(&str, &str)>); 8] = [
            (
                format!("Basic {}", b64("alice:secret")),
                Some(("alice", "secret")),
            ),
            (format!("Basic\t{}", b64("tab:x")), Some(("tab", "x"))),
            (format!("basic  {}", b64("a:b:c")), Some(("a", "b:c"))),
            (
                format!("Basic {}", b64("élise:pässword")),
                Some(("élise", "pässword")),
            ),
            (format!("Basic {}", b64("nocolon")), None),
            ("Basic !!!".to_owned(), None),
            (format!("Bearer {}", b64("a:b")), None),
            ("Basic".to_owned(), None),
        ];
        for (header, want) in table {
            let got = basic_credentials(&HeaderValue::from_str(&header).unwrap());
            let want = want.map(|(u, p)| (u.to_owned(), p.to_owned()));
            assert_eq!(got, want, "{header}");
        }
    }

    #[test]
    fn a_signed_target_names_the_same_path_and_query() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        for (signed, target, same) in [
            ("/d%c3%a9.txt", "/d%C3%A9.txt", true),
            ("/a%20b?x=1", "/a%20b?x=1", true),
            ("http://h:8080/a?q", "/a?q", true),
            ("/r%3F1", "/r?1", false),
            ("/r?1", "/r%3F1", false),
            ("/a?x=%41", "/a?x=A", false),
            ("/other", "/", false),
        ] {
            assert_eq!(signed_for(signed, &uri(target)), same, "{signed} {target}");
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
