//! Users and password hashes from an htpasswd file (`user:hash` per line), as Apache's
//! `htpasswd` and `davit passwd` write them.

use std::collections::HashMap;
use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha_crypt::ShaCrypt;

use super::AuthError;

/// A password hash in one of the schemes Davit verifies.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum StoredHash {
    /// `$argon2id$...` (PHC string), what `davit passwd` writes.
    Argon2(String),
    /// `$2y$`, `$2b$`, `$2a$`: bcrypt, Apache's `htpasswd -B`.
    Bcrypt(String),
    /// `$5$` / `$6$`: SHA-256-crypt and SHA-512-crypt.
    ShaCrypt(String),
    /// `$apr1$`: Apache's MD5 variant, for old files.
    Apr1(String),
    /// An htdigest user's `MD5(user:realm:password)`, for a Basic login; `prefix` is
    /// `user:realm:`.
    Ha1 { prefix: String, ha1: [u8; 16] },
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hashes stay out of logs and panics.
        f.write_str(match self {
            StoredHash::Argon2(_) => "Argon2(..)",
            StoredHash::Bcrypt(_) => "Bcrypt(..)",
            StoredHash::ShaCrypt(_) => "ShaCrypt(..)",
            StoredHash::Apr1(_) => "Apr1(..)",
            StoredHash::Ha1 { .. } => "Ha1(..)",
        })
    }
}

impl StoredHash {
    /// Recognises the scheme of `hash`; `None` for schemes Davit refuses (plain text,
    /// `{SHA}`, DES crypt: all too weak to accept).
    pub(crate) fn parse(hash: &str) -> Option<Self> {
        let h = hash.to_owned();
        if hash.starts_with("$argon2") {
            Some(StoredHash::Argon2(h))
        } else if ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
            Some(StoredHash::Bcrypt(h))
        } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
            Some(StoredHash::ShaCrypt(h))
        } else if hash.starts_with("$apr1$") {
            Some(StoredHash::Apr1(h))
        } else {
            None
        }
    }

    /// Whether `password` matches. Slow on purpose (that is the point of these schemes):
    /// call it off the async threads.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match self {
            StoredHash::Argon2(h) => Argon2::default()
                .verify_password(password, h.as_str())
                .is_ok(),
            StoredHash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            StoredHash::ShaCrypt(h) => ShaCrypt::default()
                .verify_password(password, h.as_str())
                .is_ok(),
            StoredHash::Apr1(h) => super::apr1::verify(password, h),
            StoredHash::Ha1 { prefix, ha1 } => {
                let mut salted = prefix.as_bytes().to_vec();
                salted.extend_from_slice(password);
                super::constant_time_eq(&super::digest::ha1_of(&salted), ha1)
            }
        }
    }
}

/// An argon2id hash of `password` with a fresh salt, in PHC form.
///
/// # Errors
/// When the system has no randomness for the salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// The users of an htpasswd file.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, StoredHash>,
}

impl Htpasswd {
    /// Reads `path`.
    ///
    /// # Errors
    /// When the file cannot be read, or a line is not `user:hash` with a known scheme.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, reason)| AuthError::Line {
            path: path.to_path_buf(),
            line,
            reason,
        })
    }

    /// Parses the text of an htpasswd file; blank lines and `#` comments are skipped.
    /// A bad line is an error (with its 1-based number) rather than a silently missing user.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let Some((user, hash)) = line.split_once(':') else {
                return Err((number, "expected user:hash".into()));
            };
            if user.is_empty() {
                return Err((number, "empty user name".into()));
            }
            let hash = hash.split(':').next().unwrap_or_default();
            let Some(stored) = StoredHash::parse(hash) else {
                return Err((
                    number,
                    format!(
                        "user {user}: unsupported password scheme (use argon2, bcrypt, \
                         $5$/$6$ sha-crypt or apr1; `davit passwd` writes argon2)"
                    ),
                ));
            };
            if users.insert(user.to_owned(), stored).is_some() {
                return Err((number, format!("user {user} appears twice")));
            }
        }
        Ok(Htpasswd { users })
    }

    pub(crate) fn get(&self, user: &str) -> Option<&StoredHash> {
        self.users.get(user)
    }

    /// Whether `user` is in the file.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// How many users the file has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// `text` (an htpasswd file) with `user` set to `hash`: the line replaced in place, or added.
pub fn upsert_line(text: &str, user: &str, hash: &str) -> String {
    let mut out = String::with_capacity(text.len() + user.len() + hash.len() + 2);
    let mut replaced = false;
    for line in text.lines() {
        // Matched as `parse` reads it: an indented line is that user's too.
        if line.trim().split_once(':').is_some_and(|(u, _)| u == user) {
            if !replaced {
                out.push_str(&format!("{user}:{hash}\n"));
                replaced = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !replaced {
        out.push_str(&format!("{user}:{hash}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines from Apache's htpasswd (-B -C 4, -m, -2) and `openssl passwd -5/-6`.
    const FILE: &str = "\
# a comment
alice:$2y$04$tl.O8ExrwquSXFrHl4BKUOar43nYcuU3FejG1I3R4hzSOSRl/niq2
bob:$apr1$9PeRwwz.$3hQuqRMiINyjg9PspLZlu/

carol:$5$nKiNihw2tg3JM8Ex$4zp3SSfiBqlOUIxi/7vO1SbOK3L0ymQhyHpeFGgaCU1
dave:$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA
erin:$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1
";

    #[test]
    fn every_scheme_verifies_its_password_and_nothing_else() {
        let file = Htpasswd::parse(FILE).unwrap();
        assert_eq!(file.len(), 5);
        for user in ["alice", "bob", "carol", "dave", "erin"] {
            let hash = file.get(user).unwrap();
            assert!(hash.verify(b"secret"), "{user}");
            assert!(!hash.verify(b"Secret"), "{user}");
            assert!(!hash.verify(b""), "{user}");
        }
        assert!(file.get("mallory").is_none());
    }

    #[test]
    fn argon2_round_trip() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let stored = StoredHash::parse(&hash).unwrap();
        assert!(stored.verify(b"correct horse"));
        assert!(!stored.verify(b"correct horse "));
    }

    #[test]
    fn bad_lines_are_errors_with_their_number() {
        for (text, line) in [
            ("alice\n", 1),
            ("# c\n:$apr1$a$b\n", 2),
            ("alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n", 1),
            ("alice:plain\n", 1),
            ("a:$apr1$x$y\na:$apr1$x$y\n", 2),
        ] {
            assert_eq!(Htpasswd::parse(text).unwrap_err().0, line, "{text}");
        }
    }

    #[test]
    fn upsert_replaces_or_appends() {
        let text = "a:$apr1$x$y\nb:$apr1$x$y\n";
        assert_eq!(
            upsert_line(text, "a", "NEW"),
            "a:NEW\nb:$apr1$x$y\n".to_owned()
        );
        assert_eq!(upsert_line(text, "c", "NEW"), format!("{text}c:NEW\n"));
        assert_eq!(upsert_line("", "c", "NEW"), "c:NEW\n");
        let indented = "  a:$apr1$x$y\n";
        assert_eq!(upsert_line(indented, "a", "NEW"), "a:NEW\n");
    }
}
