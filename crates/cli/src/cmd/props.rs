//! `davit props get|set|rm URL ...`. Property names are `{namespace}local`, or `local`
//! for `DAV:`.

use anyhow::bail;
use davit_client::{DAV_NS, Depth, PropName, PropOp, PropRequest, PropValue};

use crate::output::{Outcome, print_failures, report};
use crate::remote::{Conn, connect};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print properties (all of them without names).
    Get { url: String, names: Vec<String> },
    /// Set properties: `NAME=VALUE`, all or none.
    Set {
        url: String,
        #[arg(required = true)]
        assignments: Vec<String>,
    },
    /// Remove properties.
    Rm {
        url: String,
        #[arg(required = true)]
        names: Vec<String>,
    },
}

fn parse_name(s: &str) -> anyhow::Result<PropName> {
    if let Some(rest) = s.strip_prefix('{') {
        let Some((ns, local)) = rest.split_once('}') else {
            bail!("`{s}` is not {{namespace}}local");
        };
        return Ok(PropName::new(ns, local));
    }
    Ok(PropName::dav(s))
}

fn display(name: &PropName) -> String {
    if name.namespace == DAV_NS {
        name.local.clone()
    } else {
        format!("{{{}}}{}", name.namespace, name.local)
    }
}

pub(crate) async fn run(a: Args) -> Outcome {
    match a.action {
        Action::Get { url, names } => {
            let (client, path) = connect(&a.conn, &url)?;
            let request = if names.is_empty() {
                PropRequest::AllProp
            } else {
                PropRequest::Props(
                    names
                        .iter()
                        .map(|n| parse_name(n))
                        .collect::<Result<_, _>>()?,
                )
            };
            let ms = match client.propfind(&path, Depth::Zero, &request).await {
                Ok(ms) => ms,
                Err(e) => return report(&path, e),
            };
            for r in &ms.responses {
                for ps in &r.propstats {
                    for p in &ps.props {
                        if ps.status == 200 {
                            let value = if p.element.elements().next().is_some() {
                                p.element.inner_xml()
                            } else {
                                p.text()
                            };
                            println!("{}\t{value}", display(&p.name));
                        } else {
                            println!(
                                "{}\t({} {})",
                                display(&p.name),
                                ps.status,
                                davit_proto::reason_phrase(ps.status)
                            );
                        }
                    }
                }
            }
            let failures = ms.failures();
            print_failures(&failures);
            Ok(failures.is_empty())
        }
        Action::Set { url, assignments } => {
            let (client, path) = connect(&a.conn, &url)?;
            let mut ops = Vec::new();
            for a in &assignments {
                let Some((name, value)) = a.split_once('=') else {
                    bail!("`{a}` is not NAME=VALUE");
                };
                ops.push(PropOp::Set(parse_name(name)?, PropValue::text(value)));
            }
            patch(&client, &path, &ops).await
        }
        Action::Rm { url, names } => {
            let (client, path) = connect(&a.conn, &url)?;
            let ops = names
                .iter()
                .map(|n| parse_name(n).map(PropOp::Remove))
                .collect::<Result<Vec<_>, _>>()?;
            patch(&client, &path, &ops).await
        }
    }
}

async fn patch(client: &davit_client::Client, path: &str, ops: &[PropOp]) -> Outcome {
    match client.proppatch(path, ops).await {
        Ok(ms) => {
            let failures = ms.failures();
            print_failures(&failures);
            Ok(failures.is_empty())
        }
        Err(e) => report(path, e),
    }
}
