//! How the client commands report: one line per failed resource on stderr, progress bars
//! only on a terminal, and the exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use davit_client::{ClientError, Failure};
use indicatif::{ProgressBar, ProgressStyle};

/// What a client command ends with: `Ok(true)` when everything succeeded, `Ok(false)` when
/// some resources failed (already printed), `Err` when the command could not run.
pub(crate) type Outcome = anyhow::Result<bool>;

/// One line per failure: `PATH[ PROPERTY]: STATUS REASON[ (condition)][ - description]`.
pub(crate) fn print_failures(failures: &[Failure]) {
    for f in failures {
        let mut line = f.path.clone();
        if let Some(p) = &f.property {
            line.push_str(&format!(" {{{}}}{}", p.namespace, p.local));
        }
        line.push_str(&format!(
            ": {} {}",
            f.status,
            davit_proto::reason_phrase(f.status)
        ));
        if let Some(c) = &f.condition {
            line.push_str(&format!(" ({c})"));
        }
        if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) {
            line.push_str(&format!(" - {d}"));
        }
        eprintln!("{line}");
    }
}

/// Prints what a failed call says about `path`; fatal errors (transport, usage) are
/// returned for the exit code.
pub(crate) fn report(path: &str, e: ClientError) -> Outcome {
    let failures = e.failures(path);
    if failures.is_empty() {
        return Err(e.into());
    }
    print_failures(&failures);
    Ok(false)
}

pub(crate) fn exit_code(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("davit: {e:#}");
            let server_said_no = e
                .downcast_ref::<ClientError>()
                .is_some_and(|c| c.status_code().is_some());
            ExitCode::from(if server_said_no { 1 } else { 2 })
        }
    }
}

/// A byte progress bar, when stdout is a terminal; nothing otherwise.
pub(crate) fn progress(len: Option<u64>, label: &str) -> Option<ProgressBar> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    let style =
        ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(label.to_owned());
    Some(bar)
}

/// A progress callback that moves `bar`.
pub(crate) fn callback(bar: &Option<ProgressBar>) -> Option<davit_client::Progress> {
    bar.clone()
        .map(|b| std::sync::Arc::new(move |n: u64| b.set_position(n)) as davit_client::Progress)
}
