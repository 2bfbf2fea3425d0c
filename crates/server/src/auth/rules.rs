//! Who may read or write where: per user, a root folder and finer rules below it.

use std::collections::HashMap;
use std::sync::Arc;

use davit_proto::ResourcePath;

use super::AuthError;
use davit_proto::{composed, decomposed};

/// What a user may do at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Nothing: the path does not exist for this user.
    None,
    /// GET, HEAD, PROPFIND, and COPY from here.
    Read,
    /// Everything.
    Write,
}

impl std::str::FromStr for Access {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s {
            "none" => Ok(Access::None),
            "read" | "ro" | "read-only" => Ok(Access::Read),
            "write" | "rw" | "read-write" => Ok(Access::Write),
            other => Err(AuthError::Config(format!(
                "unknown access {other:?} (none, read or write)"
            ))),
        }
    }
}

/// One user's access: nothing outside `root`, `access` inside it, and rules for folders
/// below the root, the longest matching path winning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRules {
    root: String,
    /// (path without trailing slash, access), longest path first.
    rules: Vec<(String, Access)>,
}

impl UserRules {
    /// Access `access` everywhere below `root` (a decoded path such as `/home/alice`).
    ///
    /// # Errors
    /// When `root` is not an absolute path.
    pub fn new(root: &str, access: Access) -> Result<Self, AuthError> {
        let root = normalize(root)?;
        Ok(UserRules {
            rules: vec![(root.clone(), access)],
            root,
        })
    }

    /// `access` everywhere.
    pub fn everywhere(access: Access) -> Self {
        UserRules {
            root: String::new(),
            rules: vec![(String::new(), access)],
        }
    }

    /// Adds a rule for a folder inside the root. Rules below the root can narrow or widen
    /// access between read and write, not hide a folder: a listing of its parent would
    /// still show it.
    ///
    /// # Errors
    /// When `path` is outside the root or `access` is [`Access::None`].
    pub fn with_rule(mut self, path: &str, access: Access) -> Result<Self, AuthError> {
        let path = normalize(path)?;
        if !within(&path, &self.root) {
            return Err(AuthError::Config(format!(
                "rule {path} is outside the user's root {}",
                display_root(&self.root)
            )));
        }
        if access == Access::None {
            return Err(AuthError::Config(format!(
                "rule {path}: use read or write below a root; folders cannot be hidden from \
                 listings of their parent"
            )));
        }
        self.rules.retain(|(p, _)| *p != path);
        self.rules.push((path, access));
        self.rules.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(self)
    }

    /// Access at `path`.
    pub fn access(&self, path: &ResourcePath) -> Access {
        spellings(path.as_str(), |path| {
            self.rules
                .iter()
                .find(|(prefix, _)| within(path, prefix))
                .map_or(Access::None, |(_, a)| *a)
        })
    }

    /// The least access anywhere in the tree at `path` (itself and everything below), for
    /// methods that change a whole tree (DELETE, MOVE, overwriting COPY).
    pub fn tree_access(&self, path: &ResourcePath) -> Access {
        let top = self.access(path);
        spellings(path.as_str(), |path| {
            self.rules
                .iter()
                .filter(|(prefix, _)| prefix.len() > path.len() && within(prefix, path))
                .map(|(_, a)| *a)
                .fold(top, Access::min)
        })
    }
}

/// Access for requests without credentials, users without their own rules, and each user
/// with rules.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub(crate) anonymous: Arc<UserRules>,
    pub(crate) default: Arc<UserRules>,
    pub(crate) users: HashMap<String, Arc<UserRules>>,
}

impl AccessPolicy {
    /// Anonymous requests get `anonymous` everywhere; authenticated users write everywhere
    /// unless given their own rules.
    pub fn new(anonymous: Access) -> Self {
        AccessPolicy {
            anonymous: Arc::new(UserRules::everywhere(anonymous)),
            default: Arc::new(UserRules::everywhere(Access::Write)),
            users: HashMap::new(),
        }
    }

    /// Rules for users that have none of their own.
    pub fn with_default(mut self, rules: UserRules) -> Self {
        self.default = Arc::new(rules);
        self
    }

    /// Rules for `user`.
    pub fn with_user(mut self, user: impl Into<String>, rules: UserRules) -> Self {
        self.users.insert(user.into(), Arc::new(rules));
        self
    }

    pub(crate) fn for_user(&self, user: &str) -> &Arc<UserRules> {
        self.users.get(user).unwrap_or(&self.default)
    }

    pub(crate) fn anonymous_allowed(&self) -> bool {
        self.anonymous.rules.iter().any(|(_, a)| *a > Access::None)
    }
}

/// `/a/b/` and `/a/b` become `/a/b`; `/` becomes the empty string, which every path is in.
/// A path that a request path could never equal (`//`, `.`, `..`, encoded forms) is an
/// error: a rule that never matches would leave a folder more open than written.
fn normalize(path: &str) -> Result<String, AuthError> {
    if !path.starts_with('/') {
        return Err(AuthError::Config(format!(
            "{path:?} must be an absolute path such as /home/alice"
        )));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    match ResourcePath::from_decoded(trimmed) {
        // Composed: rules match a name however a request spells it (see `spelling`).
        Ok(p) if p.as_str() == trimmed => Ok(composed(trimmed).into_owned()),
        _ => Err(AuthError::Config(format!(
            "{path:?} is not a plain path (no //, . or .. segments)"
        ))),
    }
}

/// `rule` applied to `path` composed, so a rule matches a name however its accents are
/// spelled. A path in neither normal form (one holding a KELVIN SIGN, which composes to
/// `K`) gets the lesser of that and `rule` applied to it as sent: storage opens it as
/// sent, which may be another folder than the composed spelling names.
fn spellings(path: &str, rule: impl Fn(&str) -> Access) -> Access {
    let nfc = composed(path);
    let access = rule(nfc.trim_end_matches('/'));
    if nfc == path || decomposed(path) == path {
        access
    } else {
        access.min(rule(path.trim_end_matches('/')))
    }
}

fn within(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn display_root(root: &str) -> &str {
    if root.is_empty() { "/" } else { root }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ResourcePath {
        ResourcePath::parse(s).unwrap()
    }

    #[test]
    fn rules_match_names_however_they_are_spelled() {
        let (nfc, nfd) = ("/Caf\u{e9}", "/Cafe\u{301}");
        for (root, rule) in [(nfc, nfd), (nfd, nfc)] {
            let r = UserRules::new(root, Access::Write)
                .unwrap()
                .with_rule(&format!("{rule}/archive"), Access::Read)
                .unwrap();
            for spelled in [nfc, nfd] {
                let at =
                    |rest: &str| ResourcePath::from_decoded(&format!("{spelled}{rest}")).unwrap();
                assert_eq!(r.access(&at("/x")), Access::Write, "{root} {spelled}");
                assert_eq!(
                    r.access(&at("/archive/x")),
                    Access::Read,
                    "{root} {spelled}"
                );
                assert_eq!(r.tree_access(&at("")), Access::Read, "{root} {spelled}");
            }
        }
    }

    /// The KELVIN SIGN composes to `K`: `/\u{212A}im` is `/Kim` to the rules, but another
    /// folder on disk.
    #[test]
    fn a_name_that_composes_to_another_is_judged_as_sent_too() {
        let r = UserRules::new("/Kim", Access::Write).unwrap();
        let at = |s: &str| ResourcePath::from_decoded(s).unwrap();
        assert_eq!(r.access(&at("/\u{212A}im/x")), Access::None);
        assert_eq!(r.tree_access(&at("/\u{212A}im")), Access::None);
        assert_eq!(r.access(&at("/Kim/5 \u{212A}")), Access::Write);
    }

    #[test]
    fn longest_rule_wins_and_nothing_outside_the_root() {
        let r = UserRules::new("/home/alice/", Access::Write)
            .unwrap()
            .with_rule("/home/alice/archive", Access::Read)
            .unwrap()
            .with_rule("/home/alice/archive/inbox", Access::Write)
            .unwrap();
        let table = [
            ("/", Access::None),
            ("/home", Access::None),
            ("/home/alicex", Access::None),
            ("/home/alice", Access::Write),
            ("/home/alice/", Access::Write),
            ("/home/alice/doc.txt", Access::Write),
            ("/home/alice/archive", Access::Read),
            ("/home/alice/archive/", Access::Read),
            ("/home/alice/archive/2024/x", Access::Read),
            ("/home/alice/archived", Access::Write),
            ("/home/alice/archive/inbox/new", Access::Write),
        ];
        for (path, want) in table {
            assert_eq!(r.access(&p(path)), want, "{path}");
        }
        assert_eq!(r.tree_access(&p("/home/alice")), Access::Read);
        assert_eq!(
            r.tree_access(&p("/home/alice/archive/inbox")),
            Access::Write
        );
        assert_eq!(r.tree_access(&p("/home/alice/docs")), Access::Write);
        assert_eq!(r.tree_access(&p("/")), Access::None);
    }

    #[test]
    fn bad_rules_are_refused() {
        let r = UserRules::new("/a", Access::Write).unwrap();
        assert!(r.clone().with_rule("/b", Access::Read).is_err());
        assert!(r.clone().with_rule("/a/x", Access::None).is_err());
        assert!(UserRules::new("a", Access::Write).is_err());
        assert!(UserRules::new("/a/../b", Access::Write).is_err());
        assert!(r.clone().with_rule("/a//x", Access::Read).is_err());
        assert!(r.clone().with_rule("/a/./x", Access::Read).is_err());
        assert!(r.clone().with_rule("/a/my docs", Access::Read).is_ok());
    }

    #[test]
    fn policy_defaults() {
        let policy = AccessPolicy::new(Access::None)
            .with_user("bob", UserRules::new("/bob", Access::Read).unwrap());
        assert!(!policy.anonymous_allowed());
        assert_eq!(policy.for_user("alice").access(&p("/x")), Access::Write);
        assert_eq!(policy.for_user("bob").access(&p("/x")), Access::None);
        assert_eq!(policy.for_user("bob").access(&p("/bob/x")), Access::Read);
        assert!(AccessPolicy::new(Access::Read).anonymous_allowed());
    }
}
