//! `davit get URL [FILE]`, `davit get -R URL [DIR]` and `davit put FILE... URL`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use futures_util::StreamExt;

use crate::output::{Outcome, callback, print_failures, progress, report};
use crate::remote::{Conn, connect};

#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// The resource.
    url: String,
    /// Where to write it [default: its name, in the current folder; `-` for stdout].
    file: Option<PathBuf>,
    /// Download a collection with everything below it into the folder FILE.
    #[arg(short = 'R', long)]
    recursive: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PutArgs {
    /// Local files, then the target URL (a collection URL ending in `/` for several).
    #[arg(required = true, num_args = 2..)]
    args: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

pub(crate) async fn get(a: GetArgs) -> Outcome {
    let (client, path) = connect(&a.conn, &a.url)?;
    if a.recursive {
        if a.file.as_deref() == Some(std::path::Path::new("-")) {
            anyhow::bail!("a tree cannot go to stdout: name a folder for get -R");
        }
        return get_tree(&client, &path, a.file).await;
    }
    if a.file.as_deref() == Some(std::path::Path::new("-")) {
        let mut download = match client.get(&path).await {
            Ok(d) => d,
            Err(e) => return report(&path, e),
        };
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = download.body.next().await {
            out.write_all(&chunk?).context("writing to stdout")?;
        }
        return Ok(true);
    }
    let name = last_name(&path).unwrap_or("index.html");
    let file = a.file.unwrap_or_else(|| PathBuf::from(name));
    let bar = progress(None, name);
    let result = client.get_to_file(&path, &file, callback(&bar)).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match result {
        Ok(n) => {
            eprintln!("{path} -> {} ({n} bytes)", file.display());
            Ok(true)
        }
        Err(e) => report(&path, e),
    }
}

pub(crate) async fn put(a: PutArgs) -> Outcome {
    let (target, files) = a.args.split_last().expect("clap requires two arguments");
    let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    let (client, path) = connect(&a.conn, target)?;
    let into_collection = path.ends_with('/') || files.len() > 1;
    if !into_collection {
        return put_one(&client, &files[0], &path).await;
    }
    let mut named = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", f.display()))?;
        named.push((name.to_owned(), f.clone()));
    }
    let dir = format!("{}/", path.trim_end_matches('/'));
    let bulk = files.len() > 1 && client.options(&dir).await.is_ok_and(|c| c.bulk_upload);
    if !bulk {
        let mut all_ok = true;
        for (name, f) in &named {
            all_ok &= put_one(&client, f, &format!("{dir}{name}")).await?;
        }
        return Ok(all_ok);
    }
    let total = named
        .iter()
        .filter_map(|(_, f)| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = progress(Some(total), &format!("{} files", named.len()));
    let result = client.upload_many(&dir, &named, callback(&bar)).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match result {
        Ok(ms) => {
            let failures = ms.failures();
            for r in ms
                .responses
                .iter()
                .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            {
                let status = r.status.unwrap_or(0);
                eprintln!(
                    "{}: {status} {}",
                    r.path,
                    davit_proto::reason_phrase(status)
                );
            }
            print_failures(&failures);
            Ok(failures.is_empty())
        }
        Err(e) => report(&dir, e),
    }
}

/// The last segment of a URL path, if it has one (`/` has none).
fn last_name(path: &str) -> Option<&str> {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
}

/// `get -R`: one line per file, one per failure, and a count.
async fn get_tree(client: &davit_client::Client, path: &str, dir: Option<PathBuf>) -> Outcome {
    let name = last_name(path).unwrap_or("download");
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let bar = progress(None, name);
    let result = client.download_tree(path, &dir, callback(&bar)).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let done = match result {
        Ok(d) => d,
        Err(e) => return report(path, e),
    };
    for (remote, local, n) in &done.files {
        eprintln!("{remote} -> {} ({n} bytes)", local.display());
    }
    for (remote, e) in &done.failed {
        let failures = e.failures(remote);
        if failures.is_empty() {
            eprintln!("{remote}: {}", with_causes(e));
        } else {
            print_failures(&failures);
        }
    }
    println!(
        "downloaded {} files ({} bytes) in {} folders, failed {}",
        done.files.len(),
        done.bytes(),
        done.folders,
        done.failed.len()
    );
    Ok(done.failed.is_empty())
}

/// An error and what caused it, on one line.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

async fn put_one(client: &davit_client::Client, file: &std::path::Path, path: &str) -> Outcome {
    let len = std::fs::metadata(file).ok().map(|m| m.len());
    let bar = progress(len, &file.display().to_string());
    let result = client.put_file(path, file, callback(&bar)).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match result {
        Ok(r) => {
            eprintln!(
                "{path}: {}",
                if r.created {
                    "201 created"
                } else {
                    "204 replaced"
                }
            );
            Ok(true)
        }
        Err(e) => report(path, e),
    }
}
