//! `davit lock URL` and `davit unlock URL TOKEN`.

use davit_client::{Depth, LockScope};

use crate::output::{Outcome, report};
use crate::remote::{Conn, connect};

#[derive(Debug, clap::Args)]
pub(crate) struct LockArgs {
    /// The resource (created empty if missing).
    url: String,
    /// A shared lock instead of an exclusive one.
    #[arg(long)]
    shared: bool,
    /// Lock only the collection, not its members.
    #[arg(long)]
    shallow: bool,
    /// Seconds to hold it (the server may grant less).
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Who holds it, shown in lockdiscovery.
    #[arg(long)]
    owner: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UnlockArgs {
    /// The locked resource.
    url: String,
    /// The token `davit lock` printed.
    token: String,
    #[command(flatten)]
    conn: Conn,
}

pub(crate) async fn lock(a: LockArgs) -> Outcome {
    let (client, path) = connect(&a.conn, &a.url)?;
    let scope = if a.shared {
        LockScope::Shared
    } else {
        LockScope::Exclusive
    };
    let depth = if a.shallow {
        Depth::Zero
    } else {
        Depth::Infinity
    };
    match client
        .lock(&path, scope, depth, Some(a.timeout), a.owner.as_deref())
        .await
    {
        Ok(info) => {
            println!("{}", info.token);
            let timeout = info
                .timeout
                .map_or("infinite".to_owned(), |t| format!("{t} s"));
            eprintln!(
                "{path}: locked ({}, depth {}, {timeout})",
                info.scope.as_str(),
                info.depth
            );
            Ok(true)
        }
        Err(e) => report(&path, e),
    }
}

pub(crate) async fn unlock(a: UnlockArgs) -> Outcome {
    let (client, path) = connect(&a.conn, &a.url)?;
    match client.unlock(&path, &a.token).await {
        Ok(()) => Ok(true),
        Err(e) => report(&path, e),
    }
}
