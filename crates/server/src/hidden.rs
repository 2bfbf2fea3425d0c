//! Files left out of collection listings (`--hide`): macOS Finder's `._*` AppleDouble
//! files and `.DS_Store`, say, which other clients would otherwise show beside every file.
//!
//! Only listings change: PROPFIND members at every depth and the HTML listing. A hidden
//! file is still there for a client that names it, as Finder does with its own files, and
//! goes wherever its folder goes (DELETE, COPY, MOVE). Folders are never hidden: a client
//! that saw an empty folder would delete it, and what it held, as empty.

/// File-name patterns: `*` stands for any run of characters, `?` for one.
#[derive(Debug, Clone, Default)]
pub struct HiddenNames {
    /// Shared: every PROPFIND walk holds them.
    patterns: std::sync::Arc<[String]>,
}

/// A pattern that cannot name a member.
#[derive(Debug, thiserror::Error)]
#[error("--hide {pattern:?}: {reason}")]
pub struct InvalidPattern {
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub reason: &'static str,
}

impl HiddenNames {
    /// Patterns for member names.
    ///
    /// # Errors
    /// An empty pattern, one with `/` (patterns match one name, not a path), or one of
    /// wildcards only with a `*` (it would hide every file).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, InvalidPattern> {
        let mut out = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.as_ref();
            let reason = if p.is_empty() {
                Some("empty")
            } else if p.contains('/') {
                Some("patterns match a member's name, without '/'")
            } else if p.contains('*') && p.chars().all(|c| c == '*' || c == '?') {
                Some("it would hide every file")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(InvalidPattern {
                    pattern: p.to_owned(),
                    reason,
                });
            }
            out.push(p.to_owned());
        }
        Ok(HiddenNames {
            patterns: out.into(),
        })
    }

    /// Whether a file named `name` is left out of listings.
    pub fn hides(&self, name: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| matches(p.as_bytes(), name.as_bytes()))
    }

    /// Whether a listing leaves `entry` out: a file whose name matches, never a folder.
    pub(crate) fn hides_member(&self, entry: &davit_store::Entry) -> bool {
        !entry.is_collection() && self.hides(&entry.name)
    }
}

/// Glob matching with `*` and `?`, over bytes (a `?` matches one byte of a multi-byte
/// character; patterns name ASCII prefixes and suffixes in practice). Linear in the
/// name's length times the pattern's, with no backtracking blow-up: only the last `*` is
/// retried.
fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                retry = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match retry {
                // The last star takes one more byte.
                Some((star, from)) => {
                    p = star + 1;
                    n = from + 1;
                    retry = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let hidden = HiddenNames::new(&["._*", ".DS_Store", "*.tmp", "~$*.doc?", "a*b*c"]).unwrap();
        for (name, hides) in [
            ("._report.pdf", true),
            ("._", true),
            ("report.pdf", false),
            ("_.report", false),
            (".DS_Store", true),
            (".DS_Store2", false),
            ("x.DS_Store", false),
            ("build.tmp", true),
            (".tmp", true),
            ("build.tmp.old", false),
            ("~$letter.docx", true),
            ("~$letter.doc", false),
            ("abc", true),
            ("aXbYc", true),
            ("abcabc", true),
            ("acb", false),
            ("", false),
        ] {
            assert_eq!(hidden.hides(name), hides, "{name}");
        }
        assert!(!HiddenNames::default().hides("._x"));
        assert!(
            HiddenNames::new(&["???"]).unwrap().hides("abc"),
            "only names of three"
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in ["", "*", "**", "?*", "*?", "*?*", "a/b", "/x"] {
            assert!(HiddenNames::new(&[p]).is_err(), "{p}");
        }
    }

    /// The same answer as a plain recursive matcher.
    fn reference(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| reference(rest, &n[i..])),
            Some((&c, rest)) => {
                n.first().is_some_and(|&f| c == b'?' || c == f) && reference(rest, &n[1..])
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_recursive_definition(p in "[ab*?]{0,8}", n in "[ab]{0,10}") {
            prop_assert_eq!(matches(p.as_bytes(), n.as_bytes()), reference(p.as_bytes(), n.as_bytes()));
        }
    }
}
