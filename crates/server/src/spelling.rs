//! One name, two spellings. macOS clients send names decomposed (NFD: "e" followed by a
//! combining accent), Windows and Linux clients composed (NFC: "é"); to the disk these are
//! two names. Without help, a Mac saving over a file a Windows client made would put a
//! twin beside it, and a name one client listed could be "not found" for the other. So a
//! request that names, in one form, what exists in the other is taken to mean what exists.
//! A name that exists as sent is used as sent, and one that exists in no form keeps the
//! client's spelling: Davit never renames anything.

use davit_proto::{ResourcePath, composed, decomposed};
use davit_store::Storage;

/// `path` as it exists, where that differs from how it was sent: each name as sent when
/// that exists, else composed, else decomposed. Other spellings are only tried in folders
/// for which `may_look_in` holds (those the sender may read), so that what exists where
/// the sender may not look stays unknown to them.
pub(crate) async fn existing(
    storage: &dyn Storage,
    path: &ResourcePath,
    may_look_in: &(dyn Fn(&ResourcePath) -> bool + Sync),
) -> Option<ResourcePath> {
    // ASCII has one spelling, and most paths exist as sent: one look-up at most.
    if path.as_str().is_ascii() || storage.metadata(path).await.is_ok() {
        return None;
    }
    let found = name_by_name(storage, path, may_look_in).await?;
    (found != *path).then_some(found)
}

/// The look-ups stop at the first name that exists in no spelling: nothing can exist below
/// it, and a long path of made-up names costs no more than one.
async fn name_by_name(
    storage: &dyn Storage,
    path: &ResourcePath,
    may_look_in: &(dyn Fn(&ResourcePath) -> bool + Sync),
) -> Option<ResourcePath> {
    let mut found = ResourcePath::root();
    let mut missing = false;
    for name in path.segments() {
        let as_sent = found.join(name).ok()?;
        // The whole path as sent is already known to be missing.
        let known_missing = as_sent == *path;
        if missing
            || name.is_ascii()
            || (!known_missing && storage.metadata(&as_sent).await.is_ok())
        {
            found = as_sent;
            continue;
        }
        let mut matched = None;
        if may_look_in(&found) {
            for other in other_spellings(name) {
                let candidate = found.join(&other).ok()?;
                if storage.metadata(&candidate).await.is_ok() {
                    matched = Some(candidate);
                    break;
                }
            }
        }
        missing = matched.is_none();
        found = matched.unwrap_or(as_sent);
    }
    Some(found)
}

/// `name` composed and decomposed, where that differs from `name`.
fn other_spellings(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(2);
    for form in [composed(name), decomposed(name)] {
        if form != name && !out.iter().any(|o| *o == form) {
            out.push(form.into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use davit_store::memory::MemoryStorage;

    const COMPOSED: &str = "Caf\u{e9}";
    const DECOMPOSED: &str = "Cafe\u{301}";

    fn path(s: &str) -> ResourcePath {
        ResourcePath::from_decoded(s).expect("a valid path")
    }

    #[test]
    fn the_other_spellings_of_a_name() {
        assert_eq!(other_spellings(COMPOSED), [DECOMPOSED]);
        assert_eq!(other_spellings(DECOMPOSED), [COMPOSED]);
        assert!(other_spellings("plain").is_empty());
        // Neither form: both are other spellings.
        let mixed = format!("{COMPOSED}{DECOMPOSED}");
        assert_eq!(
            other_spellings(&mixed),
            [
                format!("{COMPOSED}{COMPOSED}"),
                format!("{DECOMPOSED}{DECOMPOSED}")
            ]
        );
    }

    #[tokio::test]
    async fn each_name_is_matched_in_the_spelling_that_exists() {
        let storage = MemoryStorage::new();
        storage
            .create_collection(&path(&format!("/{COMPOSED}")))
            .await
            .unwrap();
        storage
            .create_collection(&path(&format!("/{COMPOSED}/{DECOMPOSED}")))
            .await
            .unwrap();
        let cases = [
            // Sent as it exists: unchanged.
            (format!("/{COMPOSED}"), format!("/{COMPOSED}")),
            // The other spelling: what exists.
            (format!("/{DECOMPOSED}"), format!("/{COMPOSED}")),
            // Each name on its own: a tree whose names are spelled both ways.
            (
                format!("/{DECOMPOSED}/{COMPOSED}"),
                format!("/{COMPOSED}/{DECOMPOSED}"),
            ),
            // What exists in no spelling keeps the client's, below what does exist.
            (
                format!("/{DECOMPOSED}/new-{DECOMPOSED}"),
                format!("/{COMPOSED}/new-{DECOMPOSED}"),
            ),
            (format!("/x/{DECOMPOSED}"), format!("/x/{DECOMPOSED}")),
            ("/plain/ascii".to_owned(), "/plain/ascii".to_owned()),
        ];
        let anywhere = |_: &ResourcePath| true;
        for (sent, meant) in cases {
            let found = existing(&storage, &path(&sent), &anywhere).await;
            assert_eq!(found.unwrap_or(path(&sent)), path(&meant), "{sent:?}");
        }
        // Only where the sender may look.
        let not_in_root = |p: &ResourcePath| !p.is_root();
        let sent = path(&format!("/{DECOMPOSED}"));
        assert_eq!(existing(&storage, &sent, &not_in_root).await, None);
    }
}
