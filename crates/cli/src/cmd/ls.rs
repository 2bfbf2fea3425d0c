//! `davit ls [-R] [--json] URL`.

use davit_client::{Depth, Entry};
use serde::Serialize;

use crate::output::{Outcome, print_failures, report};
use crate::remote::{Conn, connect};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The collection or resource.
    url: String,
    /// Everything below, not just the members.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// One JSON array instead of columns.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    path: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    size: Option<u64>,
    modified: Option<String>,
    etag: Option<&'a str>,
}

pub(crate) async fn run(a: Args) -> Outcome {
    let (client, path) = connect(&a.conn, &a.url)?;
    let listed = if a.recursive {
        client.list_recursive(&path).await
    } else {
        client.list(&path, Depth::One).await
    };
    let (mut entries, failures) = match listed {
        Ok(l) => (l.entries, l.failures),
        Err(e) => return report(&path, e),
    };
    // The collection itself sorts first, then its members by path.
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    if a.json {
        let json: Vec<JsonEntry<'_>> = entries.iter().map(to_json).collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for e in &entries {
            println!("{}", line(e));
        }
    }
    print_failures(&failures);
    Ok(failures.is_empty())
}

fn to_json(e: &Entry) -> JsonEntry<'_> {
    JsonEntry {
        path: &e.path,
        kind: if e.is_collection {
            "collection"
        } else {
            "file"
        },
        size: e.size,
        modified: e.modified.map(davit_proto::rfc3339),
        etag: e.etag.as_deref(),
    }
}

/// `d|-  SIZE  MODIFIED  PATH  [ETAG]`.
fn line(e: &Entry) -> String {
    let size = e.size.map_or("-".to_owned(), |s| s.to_string());
    let modified = e.modified.map_or("-".to_owned(), |m| {
        davit_proto::rfc3339(m).replace('T', " ").replace('Z', "")
    });
    let kind = if e.is_collection { 'd' } else { '-' };
    let etag = e.etag.as_deref().unwrap_or("");
    format!("{kind} {size:>12}  {modified:19}  {}  {etag}", e.path)
        .trim_end()
        .to_owned()
}
