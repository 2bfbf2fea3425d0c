//! Where a property table may hold rows, kept in memory so that a request on a tree
//! without a single dead property never asks the database.
//!
//! Most trees carry no dead property, yet one property anywhere used to send every MOVE,
//! COPY, DELETE and PROPFIND to SQLite: about 40 µs of a cold MOVE's 150. So every stored
//! path is noted with each of its ancestors, and so is the root of every tree rows were
//! copied or moved into (anything below it may hold rows). A tree holds no row unless its
//! root is noted or lies below a noted tree root.
//!
//! Notes are hashes: a collision costs a query, never a missed row. They are added before
//! a change that may add rows commits, and never removed while running (a removal only
//! leaves a query that finds nothing). Past [`MOST_NOTES`], rows may be anywhere, and every
//! request asks the database as before. The notes are exact only while this process is
//! the database's only writer (see [`crate::LockStore::is_exclusive`]).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, OnceLock};

/// Notes kept at most (about 16 bytes each); past them rows may be anywhere.
const MOST_NOTES: usize = 1 << 16;

#[derive(Debug, Default)]
pub(crate) struct Holders(Mutex<Notes>);

#[derive(Debug, Default)]
struct Notes {
    /// Stored paths and all their ancestors.
    paths: HashSet<u64>,
    /// Roots of trees rows were copied or moved into.
    trees: HashSet<u64>,
    /// Too many notes: rows may be anywhere.
    everywhere: bool,
}

impl Holders {
    fn notes(&self) -> std::sync::MutexGuard<'_, Notes> {
        // Notes are only added, one at a time: a poisoned set is still consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rows may be at `path` (a stored path, `/` for the root).
    pub(crate) fn note_path(&self, path: &str) {
        self.notes().note_path(path);
    }

    /// Rows may be anywhere in the tree at `root`.
    pub(crate) fn note_tree(&self, root: &str) {
        let mut notes = self.notes();
        notes.note_path(root);
        if !notes.everywhere {
            notes.trees.insert(hash(root));
            notes.check_size();
        }
    }

    /// Whether the tree at `path` (the resource and everything below it) may hold rows.
    pub(crate) fn may_hold(&self, path: &str) -> bool {
        let notes = self.notes();
        notes.everywhere
            || notes.paths.contains(&hash(path))
            || (!notes.trees.is_empty()
                && self_and_ancestors(path).any(|at| notes.trees.contains(&hash(at))))
    }

    /// Whether there were too many notes to keep: rows may be anywhere.
    pub(crate) fn everywhere(&self) -> bool {
        self.notes().everywhere
    }

    /// Whether any row may exist.
    pub(crate) fn any(&self) -> bool {
        let notes = self.notes();
        notes.everywhere || !notes.paths.is_empty()
    }
}

impl Notes {
    fn note_path(&mut self, path: &str) {
        if self.everywhere {
            return;
        }
        // Every ancestor, even past one noted already: that note may be another path's
        // whose hash is the same.
        for at in self_and_ancestors(path) {
            self.paths.insert(hash(at));
        }
        self.check_size();
    }

    fn check_size(&mut self) {
        if self.paths.len() + self.trees.len() > MOST_NOTES {
            *self = Notes {
                everywhere: true,
                ..Notes::default()
            };
        }
    }
}

/// `/a/b`, `/a`, `/`.
fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |p| match p.rfind('/') {
        _ if *p == "/" => None,
        Some(0) => Some("/"),
        Some(i) => Some(&p[..i]),
        None => None,
    })
}

/// Keyed at random per process: paths chosen to collide would each cost a query.
fn hash(path: &str) -> u64 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new).hash_one(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_whose_hash_is_noted_already_still_notes_its_ancestors() {
        let h = Holders::default();
        // As if another path had the same hash as `/e/b`.
        h.notes().paths.insert(hash("/e/b"));
        h.note_path("/e/b");
        assert!(h.may_hold("/e"));
    }

    #[test]
    fn walks_up_to_the_root() {
        let all: Vec<_> = self_and_ancestors("/a/b/c").collect();
        assert_eq!(all, ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(self_and_ancestors("/").collect::<Vec<_>>(), ["/"]);
    }

    #[test]
    fn a_noted_path_is_held_by_itself_and_its_ancestors_only() {
        let h = Holders::default();
        assert!(!h.any());
        assert!(!h.may_hold("/"));
        h.note_path("/a/b/file");
        for held in ["/", "/a", "/a/b", "/a/b/file"] {
            assert!(h.may_hold(held), "{held}");
        }
        for free in ["/a/c", "/a/b/other", "/a/b/file/x", "/b", "/a/b/fil"] {
            assert!(!h.may_hold(free), "{free}");
        }
        assert!(h.any());
    }

    #[test]
    fn a_noted_tree_holds_everything_below_it() {
        let h = Holders::default();
        h.note_tree("/copy");
        for held in ["/", "/copy", "/copy/x", "/copy/x/y"] {
            assert!(h.may_hold(held), "{held}");
        }
        assert!(!h.may_hold("/copyx"));
        assert!(!h.may_hold("/other"));
    }

    #[test]
    fn too_many_notes_mean_rows_may_be_anywhere() {
        let h = Holders::default();
        for i in 0..=MOST_NOTES {
            h.note_path(&format!("/f{i}"));
        }
        assert!(h.everywhere() && h.may_hold("/never/noted"));
        assert!(h.notes().paths.is_empty(), "the notes are freed");
    }
}
