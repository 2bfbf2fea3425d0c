//! Credentials on each request: Basic until the server challenges with Digest (RFC 7616:
//! MD5, `qop=auth` or the older form without it), Digest from then on, with the nonce the
//! server gave and a request count of our own.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use davit_proto::DigestChallenge;
use md5::{Digest as _, Md5};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};

/// A user and password, and what the server asked for.
pub(crate) struct Login {
    user: String,
    password: String,
    digest: Mutex<Option<Session>>,
    /// Whether the login was tried before a streamed body (see [`Login::probe_first`]).
    probed: AtomicBool,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs and panics.
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("digest", &self.uses_digest())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Session {
    challenge: DigestChallenge,
    /// Requests sent with this nonce.
    count: u32,
}

impl Login {
    pub(crate) fn new(user: String, password: String) -> Self {
        Login {
            user,
            password,
            digest: Mutex::new(None),
            probed: AtomicBool::new(false),
        }
    }

    /// Whether to try the login with a request without a body before sending a streamed
    /// one, which cannot be sent again should the server ask for Digest: once, unless
    /// Digest is known already.
    pub(crate) fn probe_first(&self) -> bool {
        !self.uses_digest() && !self.probed.swap(true, Ordering::Relaxed)
    }

    /// Whether the server has asked for Digest.
    pub(crate) fn uses_digest(&self) -> bool {
        self.session().is_some()
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        self.digest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts the credentials on `req`: Digest when the server asked for it, else Basic.
    pub(crate) fn authorize(&self, req: &mut reqwest::Request) {
        let value = match self.session().as_mut() {
            Some(session) => {
                session.count = session.count.wrapping_add(1);
                let url = req.url();
                let mut uri = url.path().to_owned();
                if let Some(q) = url.query() {
                    uri.push('?');
                    uri.push_str(q);
                }
                self.digest_value(session, req.method().as_str(), &uri)
            }
            None => {
                use base64::Engine as _;
                let pair = format!("{}:{}", self.user, self.password);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        };
        // Bytes, not text: a name beyond ASCII goes as UTF-8.
        if let Ok(mut value) = HeaderValue::from_bytes(value.as_bytes()) {
            value.set_sensitive(true);
            req.headers_mut().insert(AUTHORIZATION, value);
        }
    }

    /// Takes a Digest challenge from a 401's headers. Whether the request is worth sending
    /// again: a first challenge, or a stale nonce; not the same challenge for credentials
    /// that were just refused.
    pub(crate) fn learn(&self, headers: &HeaderMap) -> bool {
        let usable = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
            .filter_map(|v| DigestChallenge::parse(v).ok())
            .find(|c| {
                c.offers_auth()
                    && c.algorithm
                        .as_deref()
                        .is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
            });
        let Some(challenge) = usable else {
            return false;
        };
        let mut session = self.session();
        let retry = session.is_none() || challenge.stale;
        *session = Some(Session {
            challenge,
            count: 0,
        });
        retry
    }

    fn digest_value(&self, session: &Session, method: &str, uri: &str) -> String {
        let c = &session.challenge;
        let ha1 = md5_hex(&format!("{}:{}:{}", self.user, c.realm, self.password));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let mut value = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm=MD5",
            quoted(&self.user),
            quoted(&c.realm),
            quoted(&c.nonce),
            quoted(uri)
        );
        let with_qop = c.qop.is_some();
        let response = if with_qop {
            let nc = format!("{:08x}", session.count);
            let cnonce = uuid::Uuid::new_v4().simple().to_string();
            let _ = write!(value, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
            md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce))
        } else {
            md5_hex(&format!("{ha1}:{}:{ha2}", c.nonce))
        };
        let _ = write!(value, ", response=\"{response}\"");
        if let Some(opaque) = &c.opaque {
            let _ = write!(value, ", opaque=\"{}\"", quoted(opaque));
        }
        value
    }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .fold(String::with_capacity(32), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// `s` escaped for a quoted string.
fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example, computed the client's way.
    #[test]
    fn the_rfc_2617_example() {
        let login = Login::new("Mufasa".into(), "Circle Of Life".into());
        let mut headers = HeaderMap::new();
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="testrealm@host.com""#),
        );
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
            ),
        );
        assert!(login.learn(&headers));
        assert!(!login.learn(&headers), "the same challenge again: no retry");
        let session = login.session();
        let session = Session {
            count: 1,
            challenge: session.as_ref().unwrap().challenge.clone(),
        };
        let value = login.digest_value(&session, "GET", "/dir/index.html");
        let creds = davit_proto::DigestCredentials::parse(&value).unwrap();
        assert_eq!(creds.nc.as_deref(), Some("00000001"));
        let cnonce = creds.cnonce.unwrap();
        // With the example's cnonce the example's response comes out.
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = md5_hex("GET:/dir/index.html");
        let expected = |cnonce: &str| {
            md5_hex(&format!(
                "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:{cnonce}:auth:{ha2}"
            ))
        };
        assert_eq!(expected("0a4f113b"), "6629fae49393a05397450978507c4ef1");
        assert_eq!(creds.response, expected(&cnonce));
        assert!(value.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
    }

    #[test]
    fn only_usable_challenges_are_learned() {
        let login = Login::new("u".into(), "p".into());
        for challenge in [
            r#"Basic realm="r""#,
            r#"Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth""#,
            r#"Digest realm="r", nonce="n", qop="auth-int""#,
            r#"Digest realm="r""#,
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            assert!(!login.learn(&headers), "{challenge}");
        }
        assert!(!login.uses_digest());
        let mut headers = HeaderMap::new();
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Digest realm="r", nonce="n""#),
        );
        assert!(login.learn(&headers));
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Digest realm="r", nonce="m", stale=true"#),
        );
        assert!(login.learn(&headers), "a stale nonce is worth a retry");
        let value = login.digest_value(login.session().as_ref().unwrap(), "GET", "/");
        assert!(!value.contains("qop="), "the RFC 2069 form: {value}");
    }
}
