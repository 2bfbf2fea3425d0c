//! `davit passwd FILE USER`: adds a user to an htpasswd file, or changes their password,
//! with an argon2id hash; with `--digest`, to an htdigest file, for Digest logins;
//! `--remove` takes the user out. The password comes from standard input (first line), so
//! it is never on a command line where `ps` would show it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use davit_server::auth::{hash_password, upsert_digest_line, upsert_line};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The htpasswd file, or htdigest file with --digest (created if missing).
    file: PathBuf,
    /// The user to add or update.
    user: String,
    /// Write an htdigest line (`user:realm:MD5(user:realm:password)`) for `serve
    /// --htdigest`: Digest logins, which Windows takes over plain HTTP. The file must be
    /// kept as secret as the password, which it stands for in this realm.
    #[arg(long)]
    digest: bool,
    /// The realm of the htdigest line: the server's `--realm`.
    #[arg(long, default_value = "Davit", requires = "digest")]
    realm: String,
    /// Remove the user instead (from the realm, with --digest); no password is read.
    #[arg(long)]
    remove: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if !valid_user(&args.user) {
        bail!(
            "a user name must be non-empty, hold no ':' or line break, not start with '#', \
             and not start or end with a space"
        );
    }
    if args.remove {
        return remove(&args);
    }
    let password = read_password(&args.user)?;
    if password.is_empty() {
        bail!("empty password refused");
    }
    let old = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", args.file.display())),
    };
    let new = if args.digest {
        if !davit_server::auth::realm_fits_digest(&args.realm) {
            bail!("a realm must be printable ASCII without '\"', '\\' or ':'");
        }
        upsert_digest_line(&old, &args.user, &args.realm, &password)
    } else {
        upsert_line(&old, &args.user, &hash_password(&password)?)
    };
    write_private(&args.file, new.as_bytes())?;
    eprintln!("{}: password set for {}", args.file.display(), args.user);
    Ok(())
}

/// Whether `name` reads back as itself from a password file: lines are trimmed there, and
/// a `#` starts a comment.
fn valid_user(name: &str) -> bool {
    !name.is_empty()
        && !name.contains([':', '\n', '\r'])
        && !name.starts_with('#')
        && name.trim() == name
}

fn remove(args: &Args) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let realm = args.digest.then_some(args.realm.as_str());
    let Some(new) = without_user(&old, &args.user, realm) else {
        bail!("{} has no user {}", args.file.display(), args.user);
    };
    write_private(&args.file, new.as_bytes())?;
    eprintln!("{}: {} removed", args.file.display(), args.user);
    Ok(())
}

/// `text` (an htpasswd file, or an htdigest file's `realm`) without the lines of `user`;
/// `None` when it has none.
fn without_user(text: &str, user: &str, realm: Option<&str>) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    for line in text.lines() {
        let mut fields = line.trim().splitn(3, ':');
        let matches = fields.next() == Some(user) && realm.is_none_or(|r| fields.next() == Some(r));
        if matches {
            found = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    found.then_some(out)
}

fn read_password(user: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("password for {user}: ");
        std::io::stderr().flush()?;
        // No echo while typing; `stty` is on every system with a terminal.
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if interactive {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Replaces `path` atomically with `data`, readable by its owner only.
fn write_private(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut f = options.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_that_would_not_read_back_are_refused() {
        for (name, ok) in [
            ("ann", true),
            ("ann smith", true),
            ("b#", true),
            ("", false),
            ("a:b", false),
            ("a\nb", false),
            ("#bob", false),
            (" ann", false),
            ("ann ", false),
        ] {
            assert_eq!(valid_user(name), ok, "{name:?}");
        }
    }

    #[test]
    fn removing_a_user_keeps_every_other_line() {
        let htpasswd = "# users\nann:$apr1$x$y\nbob:$apr1$x$y\n";
        assert_eq!(
            without_user(htpasswd, "ann", None).as_deref(),
            Some("# users\nbob:$apr1$x$y\n")
        );
        assert_eq!(without_user(htpasswd, "an", None), None);
        let htdigest = "ann:Davit:00\nann:Other:00\n  bob:Davit:00\n";
        assert_eq!(
            without_user(htdigest, "ann", Some("Davit")).as_deref(),
            Some("ann:Other:00\n  bob:Davit:00\n")
        );
        assert_eq!(
            without_user(htdigest, "bob", Some("Davit")).as_deref(),
            Some("ann:Davit:00\nann:Other:00\n")
        );
        assert_eq!(without_user(htdigest, "bob", Some("Other")), None);
    }
}
