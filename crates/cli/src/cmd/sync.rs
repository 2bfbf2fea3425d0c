//! `davit sync LOCALDIR URL [--delete]`.

use std::path::PathBuf;

use davit_client::sync::{apply, plan};

use crate::output::{Outcome, callback, print_failures, progress};
use crate::remote::{Conn, connect};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The local folder.
    local: PathBuf,
    /// The collection to mirror it into.
    url: String,
    /// Also delete what is on the server but no longer in the folder.
    #[arg(long)]
    delete: bool,
    #[command(flatten)]
    conn: Conn,
}

pub(crate) async fn run(a: Args) -> Outcome {
    let (client, path) = connect(&a.conn, &a.url)?;
    let plan = plan(&client, &a.local, &path, a.delete).await?;
    for (local, why) in &plan.skipped {
        eprintln!("{}: left out, {why}", local.display());
    }
    let bar = progress(
        Some(plan.upload_bytes()),
        &format!("{} files", plan.uploads.len()),
    );
    let report = apply(&client, &plan, callback(&bar)).await?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    print_failures(&report.failures);
    for (path, error) in &report.errors {
        eprintln!("{path}: {error}");
    }
    let failed = report.failures.len() + report.errors.len();
    println!(
        "uploaded {}, created {}, deleted {}, unchanged {}, failed {failed}{}",
        report.uploaded.len(),
        report.created.len(),
        report.deleted.len(),
        report.unchanged,
        if report.bulk { " (bulk upload)" } else { "" }
    );
    Ok(failed == 0)
}
