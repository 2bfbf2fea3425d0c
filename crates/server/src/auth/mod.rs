//! Authentication (HTTP Basic against an htpasswd file) and authorization (per-user rules).
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
mod htpasswd;
mod limiter;
mod rules;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

pub use htpasswd::{Htpasswd, hash_password, upsert_line};
pub use rules::{Access, AccessPolicy, UserRules};

use crate::error::DavError;
use crate::request::DavRequest;
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
        })
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

    /// How long a wrong password waits before its 401.
    pub fn failure_delay(mut self, delay: Duration) -> Self {
        self.failure_delay = delay;
        self
    }

    /// Who sent the request: a user with a verified password, or anonymous when the
    /// request has no credentials and anonymous access is allowed.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        client: IpAddr,
    ) -> Result<Principal, DavError> {
        // Credentials in another scheme (a token a proxy added) are no Basic login: the
        // request is anonymous, or challenged for one.
        let basic = headers.get(AUTHORIZATION).filter(|v| {
            v.as_bytes()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case(b"basic "))
        });
        let Some(value) = basic else {
            if self.policy.anonymous_allowed() {
                return Ok(Principal {
                    user: None,
                    rules: Some(Arc::clone(&self.policy.anonymous)),
                });
            }
            return Err(self.challenge("authentication required"));
        };
        let Some((user, password)) = basic_credentials(value) else {
            return Err(DavError::bad_request(
                "Authorization must be Basic with base64 of user:password",
            )
            .with_header(WWW_AUTHENTICATE, self.challenge_value()));
        };
        let digest = self.digest(&user, &password);
        // A password that verified before is let in even while the address is blocked:
        // someone else guessing from the same address does not lock the owner out.
        if self.remembered(&user, &digest) {
            return Ok(self.principal(user));
        }
        if let Some(wait) = self.limiter.blocked(client, Instant::now()) {
            tracing::warn!(%client, user = ?user, "login refused: too many failures from this address");
            return Err(DavError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins from this address; try again later",
            )
            .with_header(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1))));
        }
        // Counted as a failure until it verifies, so guesses sent at once (many connections,
        // HTTP/2 streams) all count against the limit before any hash is computed.
        self.limiter.record_failure(client, Instant::now());
        let stored = self.users.get(&user).cloned();
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.decoy.clone());
        let ok = {
            let _permit = self
                .checks
                .acquire()
                .await
                .map_err(|_| DavError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
            let password = password.clone();
            tokio::task::spawn_blocking(move || hash.verify(password.as_bytes()))
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
        tokio::time::sleep(self.failure_delay).await;
        Err(self.challenge("wrong user name or password"))
    }

    fn principal(&self, user: String) -> Principal {
        Principal {
            rules: Some(Arc::clone(self.policy.for_user(&user))),
            user: Some(user.into()),
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

    fn challenge_value(&self) -> HeaderValue {
        let realm: String = self
            .realm
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"Davit\""))
    }

    fn challenge(&self, reason: &'static str) -> DavError {
        DavError::new(StatusCode::UNAUTHORIZED, reason)
            .with_header(WWW_AUTHENTICATE, self.challenge_value())
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

/// User and password from `Basic base64(user:password)`.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
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
        let table: [(String, Option<(&str, &str)>); 7] = [
            (
                format!("Basic {}", b64("alice:secret")),
                Some(("alice", "secret")),
            ),
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
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
