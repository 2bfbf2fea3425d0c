//! HTTP Digest (RFC 7616) as it appears in headers: the credentials of `Authorization`
//! (§3.4), the challenges of `WWW-Authenticate` (§3.3) and the `nextnonce` of
//! `Authentication-Info` (§3.5). Checking credentials needs the server's secrets and is
//! the server's part.

use crate::ParseError;

const HEADER: &str = "Authorization";

/// The parameters of a Digest `Authorization` header that a server checks. Unknown
/// parameters are skipped, as RFC 7616 asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestCredentials {
    /// `username`.
    pub username: String,
    /// `realm`: must be the one the server challenged with.
    pub realm: String,
    /// `nonce`: the server's, echoed.
    pub nonce: String,
    /// `uri`: the request target the client signed.
    pub uri: String,
    /// `response`: the hex digest that proves the password.
    pub response: String,
    /// `algorithm`, when sent (absent means MD5).
    pub algorithm: Option<String>,
    /// `qop`, when sent.
    pub qop: Option<String>,
    /// `nc`: how many requests the client has sent with this nonce, in hex.
    pub nc: Option<String>,
    /// `cnonce`: the client's nonce.
    pub cnonce: Option<String>,
    /// `userhash=true`: `username` is a hash of the name.
    pub userhash: bool,
}

impl DigestCredentials {
    /// Parses a header value that starts with the `Digest` scheme (any case).
    ///
    /// # Errors
    /// When it is not Digest, a parameter is malformed or repeated, or a required one
    /// (`username`, `realm`, `nonce`, `uri`, `response`) is missing.
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let rest = digest_params(value, HEADER)?;
        let mut creds = DigestCredentials::default();
        let mut seen = Seen::default();
        for param in Params::new(rest) {
            let (name, value) = param?;
            let slot = match name.to_ascii_lowercase().as_str() {
                "username" => Slot::Text(&mut creds.username, &mut seen.username),
                // RFC 7616 §3.4.4: a name a quoted string cannot carry, as RFC 8187 text.
                "username*" => {
                    let Some(name) = ext_value(&value) else {
                        return Err(ParseError::header(
                            HEADER,
                            "username* must be UTF-8''percent-encoded text",
                        ));
                    };
                    Slot::Text(&mut creds.username, &mut seen.username).fill(name)?;
                    continue;
                }
                "realm" => Slot::Text(&mut creds.realm, &mut seen.realm),
                "nonce" => Slot::Text(&mut creds.nonce, &mut seen.nonce),
                "uri" => Slot::Text(&mut creds.uri, &mut seen.uri),
                "response" => Slot::Text(&mut creds.response, &mut seen.response),
                "algorithm" => Slot::Optional(&mut creds.algorithm),
                "qop" => Slot::Optional(&mut creds.qop),
                "nc" => Slot::Optional(&mut creds.nc),
                "cnonce" => Slot::Optional(&mut creds.cnonce),
                "userhash" => {
                    if seen.userhash {
                        return Err(repeated());
                    }
                    seen.userhash = true;
                    creds.userhash = value.eq_ignore_ascii_case("true");
                    continue;
                }
                _ => continue,
            };
            slot.fill(value)?;
        }
        if !(seen.username && seen.realm && seen.nonce && seen.uri && seen.response) {
            return Err(ParseError::header(
                HEADER,
                "Digest needs username, realm, nonce, uri and response",
            ));
        }
        Ok(creds)
    }
}

/// A server's Digest challenge (`WWW-Authenticate: Digest ...`, RFC 7616 §3.3), as a
/// client reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, to be sent back as it is.
    pub opaque: Option<String>,
    /// `qop`: the protections offered, comma-separated (`auth`, `auth-int`).
    pub qop: Option<String>,
    /// `algorithm` (absent means MD5).
    pub algorithm: Option<String>,
    /// `stale=true`: the last credentials were right but their nonce had expired.
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses one challenge: a header value that starts with the `Digest` scheme.
    ///
    /// # Errors
    /// When it is not Digest, a parameter is malformed or repeated, or `realm` or `nonce`
    /// is missing.
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let rest = digest_params(value, "WWW-Authenticate")?;
        let mut c = DigestChallenge::default();
        let (mut realm, mut nonce, mut stale) = (false, false, None::<String>);
        for param in Params::new(rest) {
            let (name, value) = param?;
            let slot = match name.to_ascii_lowercase().as_str() {
                "realm" => Slot::Text(&mut c.realm, &mut realm),
                "nonce" => Slot::Text(&mut c.nonce, &mut nonce),
                "opaque" => Slot::Optional(&mut c.opaque),
                "qop" => Slot::Optional(&mut c.qop),
                "algorithm" => Slot::Optional(&mut c.algorithm),
                "stale" => Slot::Optional(&mut stale),
                _ => continue,
            };
            slot.fill(value)?;
        }
        if !(realm && nonce) {
            return Err(ParseError::header(
                "WWW-Authenticate",
                "a Digest challenge needs realm and nonce",
            ));
        }
        c.stale = stale.is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(c)
    }

    /// Whether `qop` offers `auth` (or is absent, the RFC 2069 form).
    pub fn offers_auth(&self) -> bool {
        self.qop
            .as_deref()
            .is_none_or(|q| q.split(',').any(|p| p.trim().eq_ignore_ascii_case("auth")))
    }
}

/// The `nextnonce` of an `Authentication-Info` value (RFC 7616 §3.5): the nonce to use
/// from now on.
pub fn next_nonce(value: &str) -> Option<String> {
    Params::new(value)
        .map_while(Result::ok)
        .find(|(name, _)| name.eq_ignore_ascii_case("nextnonce"))
        .map(|(_, v)| v)
}

/// The parameters after the `Digest` scheme name.
fn digest_params<'a>(value: &'a str, header: &'static str) -> Result<&'a str, ParseError> {
    value
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("digest"))
        .and_then(|_| value.get(6..))
        .filter(|r| r.is_empty() || r.starts_with([' ', '\t']))
        .ok_or_else(|| ParseError::header(header, "not the Digest scheme"))
}

#[derive(Default)]
struct Seen {
    username: bool,
    realm: bool,
    nonce: bool,
    uri: bool,
    response: bool,
    userhash: bool,
}

enum Slot<'a> {
    Text(&'a mut String, &'a mut bool),
    Optional(&'a mut Option<String>),
}

impl Slot<'_> {
    /// Stores `value`; a parameter given twice (or both `username` and `username*`) is an
    /// error, as which one counts would be a guess.
    fn fill(self, value: String) -> Result<(), ParseError> {
        match self {
            Slot::Text(field, seen) => {
                if *seen {
                    return Err(repeated());
                }
                *seen = true;
                *field = value;
            }
            Slot::Optional(field) => {
                if field.is_some() {
                    return Err(repeated());
                }
                *field = Some(value);
            }
        }
        Ok(())
    }
}

/// The text of an RFC 8187 `ext-value` in UTF-8: `UTF-8'[language]'percent-encoded`.
fn ext_value(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

fn repeated() -> ParseError {
    ParseError::header(HEADER, "a Digest parameter is repeated")
}

/// `name=value` pairs separated by commas, values tokens or quoted strings (RFC 9110 §11.2).
struct Params<'a> {
    rest: &'a str,
    failed: bool,
}

impl<'a> Params<'a> {
    fn new(rest: &'a str) -> Self {
        Params {
            rest,
            failed: false,
        }
    }

    fn fail(&mut self, reason: &'static str) -> Option<Result<(&'a str, String), ParseError>> {
        self.failed = true;
        Some(Err(ParseError::header(HEADER, reason)))
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Result<(&'a str, String), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        self.rest = self.rest.trim_start_matches([' ', '\t', ',']);
        if self.rest.is_empty() {
            return None;
        }
        let name_len = self
            .rest
            .find(|c: char| !is_tchar(c))
            .unwrap_or(self.rest.len());
        if name_len == 0 {
            return self.fail("expected a parameter name");
        }
        let (name, after) = self.rest.split_at(name_len);
        let Some(after) = after.trim_start_matches([' ', '\t']).strip_prefix('=') else {
            return self.fail("expected '=' after a parameter name");
        };
        let after = after.trim_start_matches([' ', '\t']);
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted_string(quoted) {
                Some(v) => v,
                None => return self.fail("unterminated quoted string"),
            }
        } else {
            let len = after.find(|c: char| !is_tchar(c)).unwrap_or(after.len());
            if len == 0 {
                return self.fail("expected a parameter value");
            }
            (after[..len].to_owned(), &after[len..])
        };
        let after = after.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return self.fail("expected ',' between parameters");
        }
        self.rest = after;
        Some(Ok((name, value)))
    }
}

/// The text of a quoted string whose opening quote is already read, unescaped, and what
/// follows its closing quote.
fn quoted_string(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c if c.is_control() && c != '\t' => return None,
            c => out.push(c),
        }
    }
    None
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_rfc_2617_example() {
        let c = DigestCredentials::parse(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, "testrealm@host.com");
        assert_eq!(c.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.cnonce.as_deref(), Some("0a4f113b"));
        assert_eq!(c.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(c.algorithm, None);
        assert!(!c.userhash);
    }

    #[test]
    fn table() {
        let base = r#"username="u", realm="r", nonce="n", uri="/", response="x""#;
        let cases: &[(String, Option<&str>)] = &[
            (format!("Digest {base}"), Some("u")),
            (format!("digest   {base}"), Some("u")),
            (format!("DIGEST {base},"), Some("u")),
            // Escapes, spaces around '=', token values, unknown parameters skipped.
            (
                r#"Digest username = "a\"b\\c" ,realm=r,nonce=n,uri="/",response=x,foo="bar, baz""#
                    .into(),
                Some(r#"a"b\c"#),
            ),
            (
                format!("Digest {base}, userhash=true, algorithm=MD5"),
                Some("u"),
            ),
            (format!("Basic {base}"), None),
            (format!("Digestive {base}"), None),
            ("Digest".into(), None),
            (r#"Digest username="u", realm="r""#.into(), None),
            (format!("Digest {base}, username=\"v\""), None),
            (format!("Digest {base}, qop=auth, qop=auth"), None),
            (
                format!("Digest {base}, userhash=true, userhash=false"),
                None,
            ),
            (
                r#"Digest username="u, realm="r", nonce="n", uri="/", response="x"#.into(),
                None,
            ),
            (format!("Digest {base} nc=1"), None),
            (format!("Digest {base}, =x"), None),
            (format!("Digest {base}, nc="), None),
            (format!("Digest {base}, cnonce=\"a\nb\""), None),
        ];
        for (value, user) in cases {
            let got = DigestCredentials::parse(value).ok();
            assert_eq!(got.as_ref().map(|c| c.username.as_str()), *user, "{value}");
        }
        let c = DigestCredentials::parse(&format!("Digest {base}, userhash=TRUE")).unwrap();
        assert!(c.userhash);
        let rest = r#"realm="r", nonce="n", uri="/", response="x""#;
        for (value, user) in [
            (
                format!("Digest username*=UTF-8''J%C3%A4s%C3%B8n, {rest}"),
                Some("Jäsøn"),
            ),
            (
                format!("Digest username*=utf-8'en'a%20b, {rest}"),
                Some("a b"),
            ),
            (format!("Digest username*=ISO-8859-1''J%E4, {rest}"), None),
            (format!("Digest username*=UTF-8''%FF, {rest}"), None),
            (format!("Digest username*=J%C3%A4, {rest}"), None),
            (
                format!("Digest username*=UTF-8''a, username=\"a\", {rest}"),
                None,
            ),
        ] {
            let got = DigestCredentials::parse(&value).ok();
            assert_eq!(got.as_ref().map(|c| c.username.as_str()), user, "{value}");
        }
    }

    #[test]
    fn next_nonces() {
        assert_eq!(
            next_nonce(r#"qop=auth, nextnonce="abc", rspauth="x""#).as_deref(),
            Some("abc")
        );
        assert_eq!(next_nonce(r#"NextNonce=abc"#).as_deref(), Some("abc"));
        assert_eq!(next_nonce(r#"rspauth="x""#), None);
        assert_eq!(next_nonce(r#"nextnonce="unterminated"#), None);
    }

    #[test]
    fn challenges() {
        let c = DigestChallenge::parse(
            r#"Digest realm="Davit", qop="auth,auth-int", algorithm=MD5, nonce="abc", opaque="o", stale=TRUE"#,
        )
        .unwrap();
        assert_eq!(c.realm, "Davit");
        assert_eq!(c.nonce, "abc");
        assert_eq!(c.opaque.as_deref(), Some("o"));
        assert!(c.stale && c.offers_auth());
        let old = DigestChallenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        assert!(!old.stale && old.offers_auth() && old.opaque.is_none());
        let int_only = DigestChallenge::parse(r#"Digest realm="r", nonce="n", qop="auth-int""#);
        assert!(!int_only.unwrap().offers_auth());
        for bad in [
            r#"Basic realm="r""#,
            r#"Digest realm="r""#,
            r#"Digest nonce="n""#,
            r#"Digest realm="r", nonce="n", nonce="m""#,
        ] {
            assert!(DigestChallenge::parse(bad).is_err(), "{bad}");
        }
    }

    fn quote(s: &str) -> String {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = DigestCredentials::parse(&s);
            let _ = DigestCredentials::parse(&format!("Digest {s}"));
            let _ = DigestChallenge::parse(&format!("Digest {s}"));
        }

        #[test]
        fn quoted_values_come_back(
            user in "[ -~]{0,30}",
            uri in "/[ -~]{0,40}",
            nonce in "[A-Za-z0-9+/=]{1,40}",
            response in "[0-9a-f]{32}",
            order in 0usize..5,
        ) {
            let mut params = [
                format!("username={}", quote(&user)),
                format!("realm={}", quote("Davit")),
                format!("nonce={}", quote(&nonce)),
                format!("uri={}", quote(&uri)),
                format!("response={response}"),
            ];
            params.rotate_left(order);
            let c = DigestCredentials::parse(&format!("Digest {}", params.join(", "))).unwrap();
            prop_assert_eq!(c.username, user);
            prop_assert_eq!(c.uri, uri);
            prop_assert_eq!(c.nonce, nonce);
            prop_assert_eq!(c.response, response);
        }
    }
}
