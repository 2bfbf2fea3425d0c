//! `davit mkdir`, `rm`, `mv` and `cp`.

use davit_client::{Depth, Multistatus, Overwrite};

use crate::output::{Outcome, print_failures, report};
use crate::remote::{Conn, connect, destination};

#[derive(Debug, clap::Args)]
pub(crate) struct MkdirArgs {
    /// The collection to create.
    url: String,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RmArgs {
    /// What to delete; a collection goes with everything in it.
    #[arg(required = true)]
    urls: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MoveArgs {
    /// The resource.
    src: String,
    /// Where to: a URL on the same server, or a path.
    dst: String,
    /// Fail (412) rather than replace an existing destination.
    #[arg(long)]
    no_overwrite: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CopyArgs {
    /// The resource.
    src: String,
    /// Where to: a URL on the same server, or a path.
    dst: String,
    /// Fail (412) rather than replace an existing destination.
    #[arg(long)]
    no_overwrite: bool,
    /// Copy a collection without its members.
    #[arg(long)]
    shallow: bool,
    #[command(flatten)]
    conn: Conn,
}

fn overwrite(no: bool) -> Overwrite {
    if no {
        Overwrite::Forbid
    } else {
        Overwrite::Allow
    }
}

/// Prints the failures of a multistatus result; true when there were none.
fn finish(path: &str, result: Result<Multistatus, davit_client::ClientError>) -> Outcome {
    match result {
        Ok(ms) => {
            let failures = ms.failures();
            print_failures(&failures);
            Ok(failures.is_empty())
        }
        Err(e) => report(path, e),
    }
}

pub(crate) async fn mkdir(a: MkdirArgs) -> Outcome {
    let (client, path) = connect(&a.conn, &a.url)?;
    match client.mkcol(&path).await {
        Ok(()) => Ok(true),
        Err(e) => report(&path, e),
    }
}

pub(crate) async fn rm(a: RmArgs) -> Outcome {
    let mut all_ok = true;
    for url in &a.urls {
        let (client, path) = connect(&a.conn, url)?;
        all_ok &= finish(&path, client.delete(&path).await)?;
    }
    Ok(all_ok)
}

pub(crate) async fn mv(a: MoveArgs) -> Outcome {
    let (client, src) = connect(&a.conn, &a.src)?;
    let dst = destination(&client, &src, &a.dst)?;
    finish(
        &src,
        client.move_to(&src, &dst, overwrite(a.no_overwrite)).await,
    )
}

pub(crate) async fn cp(a: CopyArgs) -> Outcome {
    let (client, src) = connect(&a.conn, &a.src)?;
    let dst = destination(&client, &src, &a.dst)?;
    let depth = if a.shallow {
        Depth::Zero
    } else {
        Depth::Infinity
    };
    finish(
        &src,
        client
            .copy(&src, &dst, depth, overwrite(a.no_overwrite))
            .await,
    )
}
