//! Which server a command talks to, and as whom: credentials from flags, the environment,
//! or a netrc file.

use std::path::PathBuf;

use anyhow::{Context, bail};
use davit_client::{Client, split_url};

/// Connection flags shared by the client commands.
#[derive(Clone, clap::Args)]
pub(crate) struct Conn {
    /// User name (Digest when the server offers it, else Basic; over plain HTTP nothing is
    /// sent before the server asks).
    #[arg(long, short = 'u', env = "DAVIT_USER", global = true)]
    user: Option<String>,
    /// Password (prefer DAVIT_PASSWORD or a netrc file to keep it out of `ps`).
    #[arg(long, env = "DAVIT_PASSWORD", hide_env_values = true, global = true)]
    password: Option<String>,
    /// netrc file with credentials [default: $NETRC or ~/.netrc].
    #[arg(long, global = true)]
    netrc: Option<PathBuf>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs and panics.
        f.debug_struct("Conn")
            .field("user", &self.user)
            .field("netrc", &self.netrc)
            .finish_non_exhaustive()
    }
}

/// A client for the server of `url`, and the decoded path `url` names there.
pub(crate) fn connect(conn: &Conn, url: &str) -> anyhow::Result<(Client, String)> {
    let (origin, path) = split_url(url)?;
    let mut builder = Client::builder(&origin);
    let authority = origin.split("://").nth(1).unwrap_or_default();
    if let Some((u, p)) = credentials(conn, authority)? {
        builder = builder.credentials(&u, &p);
    }
    Ok((builder.build()?, path))
}

/// The login to send to `authority` (`[user[:password]@]host[:port]`), besides one the URL
/// carries: `--user` and `--password`, completed from the netrc entry of the host. A login
/// in the URL is used as it is, never overridden by a netrc entry.
fn credentials(conn: &Conn, authority: &str) -> anyhow::Result<Option<(String, String)>> {
    let (in_url, host) = match authority.rsplit_once('@') {
        Some((_, host)) => (true, host),
        None => (false, authority),
    };
    Ok(match (&conn.user, &conn.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (None, None) if in_url => None,
        (user, password) => netrc_lookup(conn, host)?
            .filter(|(u, _)| user.as_ref().is_none_or(|want| want == u))
            .map(|(u, p)| (u, password.clone().unwrap_or(p)))
            .or_else(|| {
                user.clone()
                    .map(|u| (u, password.clone().unwrap_or_default()))
            }),
    })
}

/// Resolves a destination given as a URL on the same server or as a path (absolute, or
/// relative to the source's collection).
pub(crate) fn destination(client: &Client, src: &str, dst: &str) -> anyhow::Result<String> {
    if dst.contains("://") {
        let (origin, path) = split_url(dst)?;
        if same_origin(client.url("/").trim_end_matches('/'), &origin) {
            return Ok(path);
        }
        bail!("the destination {dst} is on another server; copy through get and put");
    }
    if dst.starts_with('/') {
        return Ok(dst.to_owned());
    }
    let parent = src
        .trim_end_matches('/')
        .rsplit_once('/')
        .map_or("", |(p, _)| p);
    Ok(format!("{parent}/{dst}"))
}

/// Whether two `scheme://authority` origins name one server: the host in any case, with or
/// without a login or the scheme's default port.
fn same_origin(a: &str, b: &str) -> bool {
    fn normal(origin: &str) -> Option<(String, String)> {
        let (scheme, authority) = origin.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let host = authority.rsplit('@').next()?.to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        let host = host
            .strip_suffix(default)
            .map_or(host.clone(), str::to_owned);
        Some((scheme, host))
    }
    normal(a).is_some_and(|a| Some(a) == normal(b))
}

fn netrc_lookup(conn: &Conn, host: &str) -> anyhow::Result<Option<(String, String)>> {
    let path = match &conn.netrc {
        Some(p) => p.clone(),
        None => match std::env::var_os("NETRC") {
            Some(p) => PathBuf::from(p),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".netrc"),
                None => return Ok(None),
            },
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && conn.netrc.is_none() => {
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(parse_netrc(&text, host))
}

/// The login and password for `host` (`name` or `name:port`) in netrc text; `default`
/// applies when no machine matches.
fn parse_netrc(text: &str, host: &str) -> Option<(String, String)> {
    let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let mut tokens = text.split_whitespace();
    let mut found: Option<(String, String)> = None;
    let mut default = None;
    let mut current: Option<bool> = None;
    let (mut login, mut password) = (None::<String>, None::<String>);
    let mut finish =
        |current: Option<bool>, login: &mut Option<String>, password: &mut Option<String>| {
            if let (Some(is_default), Some(l)) = (current, login.take()) {
                let entry = (l, password.take().unwrap_or_default());
                if is_default {
                    default.get_or_insert(entry);
                } else {
                    found.get_or_insert(entry);
                }
            }
            *password = None;
        };
    while let Some(t) = tokens.next() {
        match t {
            "machine" => {
                finish(current, &mut login, &mut password);
                let m = tokens.next().unwrap_or_default();
                current = (m == host || m == bare).then_some(false);
            }
            "default" => {
                finish(current, &mut login, &mut password);
                current = Some(true);
            }
            "login" => login = tokens.next().map(str::to_owned),
            "password" => password = tokens.next().map(str::to_owned),
            _ => {}
        }
    }
    finish(current, &mut login, &mut password);
    found.or(default)
}

#[cfg(test)]
mod tests {
    use super::{Conn, credentials, destination, parse_netrc};

    #[test]
    fn a_login_in_the_url_is_not_overridden_by_netrc() {
        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(
            &netrc,
            "machine alice login al password n\ndefault login anon password x",
        )
        .unwrap();
        let conn = |user: Option<&str>| Conn {
            user: user.map(str::to_owned),
            password: None,
            netrc: Some(netrc.clone()),
        };
        let got = |c: &Conn, authority| credentials(c, authority).unwrap();
        assert_eq!(got(&conn(None), "alice:pw@h"), None);
        assert_eq!(got(&conn(None), "alice@h:8080"), None);
        assert_eq!(got(&conn(None), "h"), Some(("anon".into(), "x".into())));
        // Asked for by name, the user's netrc password is looked up by host alone.
        assert_eq!(
            got(&conn(Some("anon")), "bob@h"),
            Some(("anon".into(), "x".into()))
        );
    }

    #[test]
    fn destination_table() {
        let client = |origin: &str| davit_client::Client::builder(origin).build().unwrap();
        for (origin, dst, want) in [
            ("http://h:8080", "http://h:80/backup/doc", None),
            ("http://h", "http://h:8080/doc", None),
            ("http://example.com.au", "http://example.com/doc", None),
            ("http://h", "https://h/doc", None),
            ("http://h", "http://H:80/a%20b", Some("/a b")),
            ("https://h:443", "https://ann@h/doc", Some("/doc")),
            ("http://h:8080", "http://h:8080/d/", Some("/d/")),
            ("http://h", "/abs", Some("/abs")),
            ("http://h", "sibling", Some("/dir/sibling")),
        ] {
            let got = destination(&client(origin), "/dir/src", dst).ok();
            assert_eq!(got.as_deref(), want, "{origin} -> {dst}");
        }
    }

    #[test]
    fn netrc_table() {
        let text = "machine other login o password op\nmachine example.org login ann password s3cret\ndefault login anon password x";
        assert_eq!(
            parse_netrc(text, "example.org:8080"),
            Some(("ann".into(), "s3cret".into()))
        );
        assert_eq!(
            parse_netrc(text, "elsewhere"),
            Some(("anon".into(), "x".into()))
        );
        assert_eq!(
            parse_netrc("machine a login b", "a"),
            Some(("b".into(), String::new()))
        );
        assert_eq!(parse_netrc("machine a login b password c", "z"), None);
    }
}
