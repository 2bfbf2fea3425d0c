//! Credentials on each request, in the scheme the server asks for.
//!
//! Over HTTPS the first request carries Basic. Over plain HTTP it carries nothing, so a
//! server that takes Digest never sees the password: the 401 says what the server wants
//! (Digest, RFC 7616 with MD5 and `qop=auth` or the older form without it, before
//! Basic), and the request goes again with that. From then on every request carries it,
//! Digest with the server's nonce and a request count of our own.

use std::fmt::Write as _;
use std::sync::Mutex;

use davit_proto::DigestChallenge;
use md5::{Digest as _, Md5};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};

use crate::error::ClientError;

/// A user and password, and what the server asked for.
pub(crate) struct Login {
    user: String,
    password: String,
    scheme: Mutex<Scheme>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs and panics.
        f.debug_struct("Login")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What the server has asked for so far.
#[derive(Debug)]
enum Scheme {
    /// Nothing yet.
    Unknown,
    Basic,
    Digest(Session),
}

#[derive(Debug)]
struct Session {
    challenge: DigestChallenge,
    /// Requests sent with this nonce.
    count: u32,
}

/// What a request went out with, to tell whether a 401 is worth another try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    Nothing,
    Basic,
    /// Digest, under this nonce.
    Digest(String),
}

impl Login {
    pub(crate) fn new(user: String, password: String) -> Self {
        Login {
            user,
            password,
            scheme: Mutex::new(Scheme::Unknown),
        }
    }

    fn scheme(&self) -> std::sync::MutexGuard<'_, Scheme> {
        self.scheme.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts the credentials on `req` as the server asked for them.
    ///
    /// # Errors
    /// When the user name or password holds what a header cannot carry (line breaks).
    pub(crate) fn authorize(&self, req: &mut reqwest::Request) -> Result<Sent, ClientError> {
        let (value, sent) = match &mut *self.scheme() {
            Scheme::Digest(session) => {
                // Never 0: nc counts from 1.
                session.count = session.count.checked_add(1).unwrap_or(1);
                let url = req.url();
                let mut uri = url.path().to_owned();
                if let Some(q) = url.query() {
                    uri.push('?');
                    uri.push_str(q);
                }
                let value = self.digest_value(session, req.method().as_str(), &uri);
                (value, Sent::Digest(session.challenge.nonce.clone()))
            }
            Scheme::Basic => (self.basic_value(), Sent::Basic),
            Scheme::Unknown if req.url().scheme() == "https" => (self.basic_value(), Sent::Basic),
            Scheme::Unknown => return Ok(Sent::Nothing),
        };
        // Bytes, not text: a name beyond ASCII goes as UTF-8.
        let mut value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
            ClientError::usage(
                "the user name or password holds a character a header cannot carry".to_owned(),
            )
        })?;
        value.set_sensitive(true);
        req.headers_mut().insert(AUTHORIZATION, value);
        Ok(sent)
    }

    fn basic_value(&self) -> String {
        use base64::Engine as _;
        let pair = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// Takes what a 401 asks for (Digest before Basic). Whether the request that went with
    /// `sent` is worth sending again: it carried less than the server now asks for, or a
    /// nonce that is stale or no longer the current one.
    pub(crate) fn learn(&self, headers: &HeaderMap, sent: &Sent) -> bool {
        let mut digest = None;
        let mut basic = false;
        for value in headers.get_all(WWW_AUTHENTICATE) {
            let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
                continue;
            };
            for challenge in challenges(value) {
                if scheme_is(challenge, "basic") {
                    basic = true;
                } else if digest.is_none()
                    && let Ok(c) = DigestChallenge::parse(challenge)
                    && c.offers_auth()
                    && c.algorithm
                        .as_deref()
                        .is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
                {
                    digest = Some(c);
                }
            }
        }
        let mut scheme = self.scheme();
        match digest {
            Some(challenge) => {
                let current = match &*scheme {
                    Scheme::Digest(s) => Some(s.challenge.nonce.clone()),
                    _ => None,
                };
                let retry = match sent {
                    Sent::Nothing | Sent::Basic => true,
                    // Another request may have learned a newer nonce meanwhile.
                    Sent::Digest(nonce) => {
                        challenge.stale || current.as_ref().is_some_and(|c| c != nonce)
                    }
                };
                // A challenge answering an older nonce does not replace a newer one.
                let older =
                    matches!(sent, Sent::Digest(n) if current.as_ref().is_some_and(|c| c != n));
                if !older {
                    let count = match &*scheme {
                        Scheme::Digest(s) if s.challenge.nonce == challenge.nonce => s.count,
                        _ => 0,
                    };
                    *scheme = Scheme::Digest(Session { challenge, count });
                }
                retry
            }
            None if basic => match &*scheme {
                // A server that took Digest does not get the password in clear.
                Scheme::Digest(_) => false,
                _ => {
                    *scheme = Scheme::Basic;
                    *sent == Sent::Nothing
                }
            },
            None => false,
        }
    }

    /// Takes the `nextnonce` of an answer's `Authentication-Info`, when the request went
    /// under the current nonce: the server is about to let that one expire.
    pub(crate) fn next_nonce(&self, headers: &HeaderMap, sent: &Sent) {
        let next = headers
            .get("authentication-info")
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .and_then(davit_proto::digest::next_nonce);
        if let (Sent::Digest(used), Some(next)) = (sent, next)
            && let Scheme::Digest(session) = &mut *self.scheme()
            && session.challenge.nonce == *used
            && next != *used
        {
            session.challenge.nonce = next;
            session.count = 0;
        }
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
        let response = if c.qop.is_some() {
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

/// The challenges of one `WWW-Authenticate` value: a new one starts at each
/// comma-separated item (outside quotes) whose first token is followed by a space and not
/// by `=`, as `Basic realm=...` is and `realm=...` is not.
fn challenges(value: &str) -> Vec<&str> {
    let mut starts = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let bytes = value.as_bytes();
    let check = |from: usize, starts: &mut Vec<usize>| {
        let item = value[from..].trim_start_matches([' ', '\t', ',']);
        let at = value.len() - item.len();
        let token_end = item.find([' ', '\t', '=', ',']).unwrap_or(item.len());
        let after = item[token_end..].trim_start_matches([' ', '\t']);
        if token_end > 0 && token_end < item.len() && !after.starts_with('=') && !after.is_empty() {
            starts.push(at);
        }
    };
    check(0, &mut starts);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_quotes && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == b',' && !in_quotes {
            check(i + 1, &mut starts);
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(value.len());
        out.push(value[start..end].trim_end_matches([' ', '\t', ',']));
    }
    out
}

fn scheme_is(challenge: &str, name: &str) -> bool {
    challenge
        .split([' ', '\t'])
        .next()
        .is_some_and(|s| s.eq_ignore_ascii_case(name))
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
    use proptest::prelude::*;

    const RFC_CHALLENGE: &str = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn request(url: &str) -> reqwest::Request {
        reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap())
    }

    /// RFC 2617 §3.5's example, computed the client's way, through `authorize`.
    #[test]
    fn the_rfc_2617_example() {
        let login = Login::new("Mufasa".into(), "Circle Of Life".into());
        assert!(login.learn(
            &headers(&[r#"Basic realm="x""#, RFC_CHALLENGE]),
            &Sent::Nothing
        ));
        let mut req = request("http://host.com/dir/index.html");
        let sent = login.authorize(&mut req).unwrap();
        assert_eq!(
            sent,
            Sent::Digest("dcd98b7102dd2f0e8b11d0f600bfb0c093".into())
        );
        let value = req.headers()[AUTHORIZATION].to_str().unwrap().to_owned();
        let creds = davit_proto::DigestCredentials::parse(&value).unwrap();
        assert_eq!(creds.uri, "/dir/index.html");
        assert_eq!(creds.nc.as_deref(), Some("00000001"));
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = md5_hex("GET:/dir/index.html");
        let expected = |cnonce: &str| {
            md5_hex(&format!(
                "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:{cnonce}:auth:{ha2}"
            ))
        };
        assert_eq!(expected("0a4f113b"), "6629fae49393a05397450978507c4ef1");
        assert_eq!(creds.response, expected(&creds.cnonce.unwrap()));
        assert!(value.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
        // The next request counts on.
        let mut req = request("http://host.com/dir/index.html");
        login.authorize(&mut req).unwrap();
        assert!(
            req.headers()[AUTHORIZATION]
                .to_str()
                .unwrap()
                .contains("nc=00000002")
        );
    }

    /// The RFC 2069 form, without qop: `MD5(HA1:nonce:HA2)`.
    #[test]
    fn the_form_without_qop() {
        let login = Login::new("Mufasa".into(), "CircleOfLife".into());
        let challenge =
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#;
        assert!(login.learn(&headers(&[challenge]), &Sent::Basic));
        let mut req = request("http://host.com/dir/index.html");
        login.authorize(&mut req).unwrap();
        let value = req.headers()[AUTHORIZATION].to_str().unwrap().to_owned();
        let creds = davit_proto::DigestCredentials::parse(&value).unwrap();
        assert_eq!(creds.response, "1949323746fe6a43ef61f9606e7febea");
        assert!(creds.qop.is_none() && creds.nc.is_none());
    }

    #[test]
    fn the_signed_uri_is_the_request_line_target() {
        let login = Login::new("u".into(), "p".into());
        login.learn(
            &headers(&[r#"Digest realm="r", nonce="n", qop="auth""#]),
            &Sent::Nothing,
        );
        let mut req = request("http://h/a%20b/%C3%A9.txt?x=1&y=%2F");
        login.authorize(&mut req).unwrap();
        let value = req.headers()[AUTHORIZATION].to_str().unwrap().to_owned();
        let creds = davit_proto::DigestCredentials::parse(&value).unwrap();
        assert_eq!(creds.uri, "/a%20b/%C3%A9.txt?x=1&y=%2F");
    }

    #[test]
    fn nothing_goes_in_clear_before_the_server_says_what_it_takes() {
        let login = Login::new("u".into(), "p".into());
        let mut req = request("http://h/");
        assert_eq!(login.authorize(&mut req).unwrap(), Sent::Nothing);
        assert!(req.headers().get(AUTHORIZATION).is_none());
        let mut tls = request("https://h/");
        assert_eq!(login.authorize(&mut tls).unwrap(), Sent::Basic);
        // A Basic-only server: Basic from then on.
        assert!(login.learn(&headers(&[r#"Basic realm="r""#]), &Sent::Nothing));
        assert_eq!(
            login.authorize(&mut request("http://h/")).unwrap(),
            Sent::Basic
        );
        assert!(
            !login.learn(&headers(&[r#"Basic realm="r""#]), &Sent::Basic),
            "refused"
        );
        // Digest wins once offered, and is never given up for Basic.
        assert!(login.learn(&headers(&[r#"Digest realm="r", nonce="n""#]), &Sent::Basic));
        assert!(!login.learn(&headers(&[r#"Basic realm="r""#]), &Sent::Digest("n".into())));
        assert_eq!(
            login.authorize(&mut request("http://h/")).unwrap(),
            Sent::Digest("n".into())
        );
        // Basic carries any name (in base64); Digest's quoted string cannot carry a line break.
        let bad = Login::new("u\r\nX: y".into(), "p".into());
        assert!(bad.authorize(&mut request("https://h/")).is_ok());
        bad.learn(&headers(&[r#"Digest realm="r", nonce="n""#]), &Sent::Basic);
        assert!(bad.authorize(&mut request("https://h/")).is_err());
    }

    #[test]
    fn stale_and_newer_nonces() {
        let login = Login::new("u".into(), "p".into());
        let digest = |nonce: &str, stale: bool| {
            let stale = if stale { ", stale=true" } else { "" };
            headers(&[&format!(
                r#"Digest realm="r", nonce="{nonce}", qop="auth"{stale}"#
            )])
        };
        assert!(login.learn(&digest("a", false), &Sent::Nothing));
        login.authorize(&mut request("http://h/")).unwrap();
        // The same challenge again keeps the count; a refused password is not retried.
        assert!(!login.learn(&digest("a", false), &Sent::Digest("a".into())));
        let mut req = request("http://h/");
        login.authorize(&mut req).unwrap();
        assert!(
            req.headers()[AUTHORIZATION]
                .to_str()
                .unwrap()
                .contains("nc=00000002")
        );
        assert!(
            login.learn(&digest("b", true), &Sent::Digest("a".into())),
            "stale"
        );
        // A late answer to a request under "a" does not replace "b", and is retried.
        assert!(login.learn(&digest("c", false), &Sent::Digest("a".into())));
        assert_eq!(
            login.authorize(&mut request("http://h/")).unwrap(),
            Sent::Digest("b".into())
        );
    }

    #[test]
    fn a_next_nonce_takes_over() {
        let login = Login::new("u".into(), "p".into());
        login.learn(
            &headers(&[r#"Digest realm="r", nonce="a", qop="auth""#]),
            &Sent::Nothing,
        );
        let sent = login.authorize(&mut request("http://h/")).unwrap();
        let mut info = HeaderMap::new();
        info.insert(
            "authentication-info",
            HeaderValue::from_static(r#"nextnonce="b""#),
        );
        login.next_nonce(&info, &sent);
        let mut req = request("http://h/");
        assert_eq!(login.authorize(&mut req).unwrap(), Sent::Digest("b".into()));
        assert!(
            req.headers()[AUTHORIZATION]
                .to_str()
                .unwrap()
                .contains("nc=00000001")
        );
        // A late answer to a request under "a" does not take "b" back.
        info.insert(
            "authentication-info",
            HeaderValue::from_static(r#"nextnonce="c""#),
        );
        login.next_nonce(&info, &sent);
        assert_eq!(
            login.authorize(&mut request("http://h/")).unwrap(),
            Sent::Digest("b".into())
        );
    }

    #[test]
    fn unusable_challenges_are_ignored() {
        let login = Login::new("u".into(), "p".into());
        for challenge in [
            r#"Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth""#,
            r#"Digest realm="r", nonce="n", qop="auth-int""#,
            r#"Digest realm="r""#,
            r#"Bearer realm="r""#,
        ] {
            assert!(
                !login.learn(&headers(&[challenge]), &Sent::Nothing),
                "{challenge}"
            );
        }
        assert_eq!(
            login.authorize(&mut request("http://h/")).unwrap(),
            Sent::Nothing
        );
    }

    #[test]
    fn several_challenges_in_one_value() {
        for (value, want) in [
            (
                r#"Basic realm="a, Digest b", Digest realm="r", nonce="n""#,
                vec![
                    r#"Basic realm="a, Digest b""#,
                    r#"Digest realm="r", nonce="n""#,
                ],
            ),
            (
                r#"Digest realm="r", nonce="n", qop="auth,auth-int", Basic realm="x""#,
                vec![
                    r#"Digest realm="r", nonce="n", qop="auth,auth-int""#,
                    r#"Basic realm="x""#,
                ],
            ),
            ("Negotiate", vec![]),
            (r#"Basic realm="x""#, vec![r#"Basic realm="x""#]),
        ] {
            assert_eq!(challenges(value), want, "{value}");
        }
        let login = Login::new("u".into(), "p".into());
        let one = r#"Basic realm="a", Digest realm="r", nonce="n", qop="auth""#;
        assert!(login.learn(&headers(&[one]), &Sent::Nothing));
        assert_eq!(
            login.authorize(&mut request("http://h/")).unwrap(),
            Sent::Digest("n".into())
        );
    }

    proptest! {
        #[test]
        fn challenge_splitting_never_panics(s in "\\PC{0,120}") {
            for c in challenges(&s) {
                prop_assert!(s.contains(c));
            }
        }
    }
}
