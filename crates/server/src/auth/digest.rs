//! HTTP Digest authentication (RFC 7616, MD5, `qop=auth`) against an htdigest file.
//!
//! Windows' WebDAV client refuses Basic over plain HTTP unless the registry is changed;
//! Digest it takes. Digest needs the server to hold `MD5(user:realm:password)` per user,
//! which Apache's `htdigest` and `davit passwd --digest` write; the one-way hashes of an
//! htpasswd file cannot serve it.
//!
//! Nonces carry their time of issue and a keyed MAC of it, so issuing one keeps no state,
//! and a restart makes old nonces stale, which clients retry silently. Each response a
//! nonce has let in is remembered while the nonce lives ([`Replays`]): a captured request
//! sent again (with another body or `Destination` even, which Digest does not sign) is
//! asked to log in afresh, which needs the password. Digest keeps the password off the
//! wire; TLS is what keeps the requests private.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::{AuthError, constant_time_eq};

/// How long a nonce is good for. Past it the client is asked again with `stale=true`,
/// which clients answer without prompting.
pub(crate) const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// The users of an htdigest file (`user:realm:md5hex` per line) for one realm.
#[derive(Clone, Default)]
pub struct Htdigest {
    realm: String,
    users: HashMap<String, [u8; 16]>,
    /// Lines for other realms, which can never verify here.
    other_realms: usize,
}

impl std::fmt::Debug for Htdigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htdigest")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Htdigest {
    /// Reads `path`, keeping the lines of `realm`.
    ///
    /// # Errors
    /// When the file cannot be read, or a line is not `user:realm:32-hex-digits`.
    pub fn load(path: &Path, realm: &str) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, realm).map_err(|(line, reason)| AuthError::Line {
            path: path.to_path_buf(),
            line,
            reason,
        })
    }

    /// Parses the text of an htdigest file; blank lines and `#` comments are skipped, and
    /// lines of other realms counted (see [`Htdigest::other_realms`]).
    ///
    /// # Errors
    /// A bad line, with its 1-based number.
    pub fn parse(text: &str, realm: &str) -> Result<Self, (usize, String)> {
        let mut file = Htdigest {
            realm: realm.to_owned(),
            ..Htdigest::default()
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let mut fields = line.splitn(3, ':');
            let (Some(user), Some(line_realm), Some(hex)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err((number, "expected user:realm:hash".into()));
            };
            if user.is_empty() {
                return Err((number, "empty user name".into()));
            }
            let Some(ha1) = from_hex(hex) else {
                return Err((
                    number,
                    format!("user {user}: the hash must be 32 hex digits (MD5)"),
                ));
            };
            if line_realm != realm {
                file.other_realms += 1;
                continue;
            }
            if file.users.insert(user.to_owned(), ha1).is_some() {
                return Err((number, format!("user {user} appears twice")));
            }
        }
        Ok(file)
    }

    /// The names of the realm's users.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The realm the users were read for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Lines skipped because they name another realm.
    pub fn other_realms(&self) -> usize {
        self.other_realms
    }

    /// How many users the realm has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the realm has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub(crate) fn get(&self, user: &str) -> Option<&[u8; 16]> {
        self.users.get(user)
    }
}

/// Whether `realm` can be a Digest realm: printable ASCII without `"` or `\\` (it goes
/// into a quoted string of the challenge as it is, and clients hash it as they read it)
/// and without `:` (the htdigest file's separator).
pub fn realm_fits_digest(realm: &str) -> bool {
    !realm.is_empty()
        && realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && !matches!(b, b'"' | b'\\' | b':'))
}

/// `H(user:realm:password)`, the secret an htdigest line holds.
pub(crate) fn ha1(user: &str, realm: &str, password: &[u8]) -> [u8; 16] {
    let mut salted = format!("{user}:{realm}:").into_bytes();
    salted.extend_from_slice(password);
    ha1_of(&salted)
}

/// MD5 of `user:realm:password`, given whole.
pub(crate) fn ha1_of(salted: &[u8]) -> [u8; 16] {
    Md5::digest(salted).into()
}

/// `text` (an htdigest file) with `user` in `realm` set to `password`: the line replaced in
/// place, or added.
pub fn upsert_digest_line(text: &str, user: &str, realm: &str, password: &str) -> String {
    let line = format!(
        "{user}:{realm}:{}\n",
        to_hex(&ha1(user, realm, password.as_bytes()))
    );
    let mut out = String::with_capacity(text.len() + line.len());
    let mut replaced = false;
    for old in text.lines() {
        let mut fields = old.trim().splitn(3, ':');
        if fields.next() == Some(user) && fields.next() == Some(realm) {
            if !replaced {
                out.push_str(&line);
                replaced = true;
            }
            continue;
        }
        out.push_str(old);
        out.push('\n');
    }
    if !replaced {
        out.push_str(&line);
    }
    out
}

/// Responses a nonce has already let in, per nonce that has let one in.
#[derive(Default)]
pub(crate) struct Replays {
    seen: Mutex<HashMap<String, HashSet<[u8; 16]>>>,
}

/// Responses remembered per nonce: a client past it is asked for a new nonce (one round
/// trip), so memory per nonce stays bounded whatever the client sends.
const MAX_RESPONSES_PER_NONCE: usize = 4096;
/// Nonces remembered at once; past it the expired ones go, and if that is not enough,
/// all (their replays within the lifetime would then go unnoticed: a flood's cost).
const MAX_NONCES: usize = 4096;

impl Replays {
    /// Whether `response` under `nonce` (issued here and fresh, with a right response) is
    /// used for the first time; remembers it.
    pub(crate) fn first_use(
        &self,
        nonce: &str,
        response: &str,
        now: SystemTime,
        lifetime: Duration,
    ) -> bool {
        let Some(response) = from_hex(response) else {
            return false;
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_NONCES && !seen.contains_key(nonce) {
            let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            seen.retain(|n, _| {
                issued(n).is_some_and(|t| now.saturating_sub(t) <= lifetime.as_secs())
            });
            if seen.len() >= MAX_NONCES {
                seen.clear();
            }
        }
        let responses = seen.entry(nonce.to_owned()).or_default();
        responses.len() < MAX_RESPONSES_PER_NONCE && responses.insert(response)
    }
}

/// The time of issue written in a nonce.
fn issued(nonce: &str) -> Option<u64> {
    u64::from_str_radix(nonce.get(..16)?, 16).ok()
}

/// Issues and checks nonces: the time of issue in hex, then a MAC of it under a key that
/// lives as long as the process.
#[derive(Clone)]
pub(crate) struct Nonces {
    key: [u8; 32],
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceState {
    /// Issued here, `age` seconds ago.
    Fresh { age: u64 },
    /// Issued here, but too long ago (or before a restart: then it does not verify and
    /// is [`NonceState::Unknown`]).
    Stale,
    /// Not issued by this process.
    Unknown,
}

/// How far in the future a nonce's time may be: clocks of the same process agree, so
/// more means the clock was set back, and the nonce is treated as stale.
const FUTURE_SLACK_SECS: u64 = 5;

impl Nonces {
    /// Nonces under a key derived from `secret`, so the secret's other uses stay apart.
    pub(crate) fn new(secret: &[u8; 32]) -> Self {
        Nonces {
            key: Sha256::new()
                .chain_update(secret)
                .chain_update(b"davit digest nonce key")
                .finalize()
                .into(),
        }
    }

    pub(crate) fn issue(&self, now: SystemTime) -> String {
        let issued = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{issued:016x}{}", to_hex(&self.mac(issued)))
    }

    pub(crate) fn check(&self, nonce: &str, now: SystemTime, lifetime: Duration) -> NonceState {
        let (Some(time), Some(mac)) = (nonce.get(..16), nonce.get(16..)) else {
            return NonceState::Unknown;
        };
        let Some(issued) = issued(nonce) else {
            return NonceState::Unknown;
        };
        // One spelling per nonce: `+`, upper case and the like are not ours.
        if time != format!("{issued:016x}") {
            return NonceState::Unknown;
        }
        if !constant_time_eq(mac.as_bytes(), to_hex(&self.mac(issued)).as_bytes()) {
            return NonceState::Unknown;
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let age = now.saturating_sub(issued);
        if issued > now + FUTURE_SLACK_SECS || age > lifetime.as_secs() {
            NonceState::Stale
        } else {
            NonceState::Fresh { age }
        }
    }

    fn mac(&self, issued: u64) -> [u8; 16] {
        let full: [u8; 32] = Sha256::new()
            .chain_update(self.key)
            .chain_update(b"digest nonce")
            .chain_update(issued.to_be_bytes())
            .finalize()
            .into();
        let mut mac = [0u8; 16];
        mac.copy_from_slice(&full[..16]);
        mac
    }
}

/// The `response` a client that knows the password sends: `H(HA1:nonce:nc:cnonce:qop:HA2)`
/// with `HA2 = H(method:uri)` (RFC 7616 §3.4.1, `qop=auth`), in lower-case hex.
pub(crate) fn expected_response(
    ha1: &[u8; 16],
    nonce: &str,
    nc: &str,
    cnonce: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = to_hex(
        &Md5::new()
            .chain_update(method)
            .chain_update(":")
            .chain_update(uri)
            .finalize()
            .into(),
    );
    to_hex(
        &Md5::new()
            .chain_update(to_hex(ha1))
            .chain_update(":")
            .chain_update(nonce)
            .chain_update(":")
            .chain_update(nc)
            .chain_update(":")
            .chain_update(cnonce)
            .chain_update(":auth:")
            .chain_update(ha2)
            .finalize()
            .into(),
    )
}

fn to_hex(bytes: &[u8; 16]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn from_hex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's worked example.
    #[test]
    fn the_rfc_2617_example_verifies() {
        let ha1 = ha1("Mufasa", "testrealm@host.com", b"Circle Of Life");
        let got = expected_response(
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(got, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn htdigest_lines() {
        let text = "# users\nalice:Davit:939e7578ed9e3c518a452acee763bce9\n\
                    alice:Other:939e7578ed9e3c518a452acee763bce9\n\
                    bob:Davit:0123456789ABCDEF0123456789abcdef\n";
        let file = Htdigest::parse(text, "Davit").unwrap();
        assert_eq!(file.len(), 2);
        assert_eq!(file.other_realms(), 1);
        assert!(file.get("alice").is_some());
        assert!(file.get("carol").is_none());
        for (text, line) in [
            ("alice\n", 1),
            ("alice:Davit\n", 1),
            ("# c\n:Davit:939e7578ed9e3c518a452acee763bce9\n", 2),
            ("alice:Davit:939e7578\n", 1),
            ("alice:Davit:939e7578ed9e3c518a452acee763bcez\n", 1),
            ("alice:Davit:+39e7578ed9e3c518a452acee763bce9\n", 1),
            (
                "a:Davit:939e7578ed9e3c518a452acee763bce9\na:Davit:939e7578ed9e3c518a452acee763bce9\n",
                2,
            ),
        ] {
            assert_eq!(
                Htdigest::parse(text, "Davit").unwrap_err().0,
                line,
                "{text}"
            );
        }
    }

    #[test]
    fn upsert_writes_what_parse_reads() {
        let text = upsert_digest_line("", "alice", "Davit", "secret");
        let text = upsert_digest_line(&text, "bob", "Davit", "other");
        let text = upsert_digest_line(&text, "alice", "Elsewhere", "x");
        let text = upsert_digest_line(&format!("  {text}"), "alice", "Davit", "new");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.starts_with("alice:Davit:"));
        let file = Htdigest::parse(&text, "Davit").unwrap();
        assert_eq!(file.get("alice"), Some(&ha1("alice", "Davit", b"new")));
        assert_eq!(file.get("bob"), Some(&ha1("bob", "Davit", b"other")));
    }

    #[test]
    fn a_response_lets_in_once() {
        let replays = Replays::default();
        let life = Duration::from_secs(300);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let nonce = Nonces::new(&[1; 32]).issue(t0);
        let a = "6629fae49393a05397450978507c4ef1";
        let b = "6629fae49393a05397450978507c4ef2";
        assert!(replays.first_use(&nonce, a, t0, life));
        assert!(!replays.first_use(&nonce, a, t0, life), "the same again");
        assert!(
            !replays.first_use(&nonce, &a.to_ascii_uppercase(), t0, life),
            "any case"
        );
        assert!(replays.first_use(&nonce, b, t0, life));
        let other = Nonces::new(&[1; 32]).issue(t0 + Duration::from_secs(1));
        assert!(replays.first_use(&other, a, t0, life), "per nonce");
        assert!(!replays.first_use(&nonce, "not hex", t0, life));
    }

    #[test]
    fn realms_that_fit() {
        for (realm, fits) in [
            ("Davit", true),
            ("files @ home", true),
            ("", false),
            ("a\"b", false),
            ("a\\b", false),
            ("a:b", false),
            ("Dävit", false),
            ("a\tb", false),
        ] {
            assert_eq!(realm_fits_digest(realm), fits, "{realm}");
        }
    }

    #[test]
    fn nonces_are_fresh_then_stale_and_cannot_be_forged() {
        let life = Duration::from_secs(300);
        let nonces = Nonces::new(&[7; 32]);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let n = nonces.issue(t0);
        assert_eq!(nonces.check(&n, t0, life), NonceState::Fresh { age: 0 });
        assert_eq!(
            nonces.check(&n, t0 + life, life),
            NonceState::Fresh { age: 300 }
        );
        let late = t0 + life + Duration::from_secs(1);
        assert_eq!(nonces.check(&n, late, life), NonceState::Stale);
        let early = t0 - Duration::from_secs(5);
        assert_eq!(nonces.check(&n, early, life), NonceState::Fresh { age: 0 });
        let set_back = t0 - Duration::from_secs(6);
        assert_eq!(nonces.check(&n, set_back, life), NonceState::Stale);
        // Another key (a restart), a changed time, a truncated or foreign nonce.
        let other = Nonces::new(&[8; 32]);
        assert_eq!(other.check(&n, t0, life), NonceState::Unknown);
        let later = format!("{:016x}{}", 1_800_000_999u64, &n[16..]);
        assert_eq!(nonces.check(&later, t0, life), NonceState::Unknown);
        let upper = n.to_ascii_uppercase();
        let plus = format!("+{}", &n[1..]);
        for bad in [
            "",
            &n[..20],
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "é",
            &upper,
            &plus,
        ] {
            assert_eq!(nonces.check(bad, t0, life), NonceState::Unknown, "{bad}");
        }
    }
}
