//! `davit`: the WebDAV server (`davit serve`) and a client (`davit ls`, `get`, `put`, ...)
//! in one binary. No protocol logic lives here: the server and client libraries do the work;
//! this crate parses arguments, prints results and picks the exit code.
//!
//! Exit codes: 0 when everything succeeded, 1 when the server refused something (every
//! failed resource is printed), 2 for usage errors and unreachable servers.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod malloc;
mod open_files;
mod output;
mod passwd;
mod remote;
mod serve;
mod settings;
mod tls;

#[derive(Debug, Parser)]
#[command(name = "davit", version, about = "A WebDAV server and client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a folder over WebDAV.
    Serve(Box<serve::ServeArgs>),
    /// Add a user to an htpasswd file (argon2) or, with --digest, an htdigest file, or change
    /// their password (password on stdin).
    Passwd(passwd::Args),
    /// List a collection (-R: everything below it).
    Ls(cmd::ls::Args),
    /// Download a resource.
    Get(cmd::transfer::GetArgs),
    /// Upload files (several into a collection: in one bulk request where offered).
    Put(cmd::transfer::PutArgs),
    /// Create a collection.
    Mkdir(cmd::tree::MkdirArgs),
    /// Delete resources (collections with everything in them).
    Rm(cmd::tree::RmArgs),
    /// Move or rename a resource.
    Mv(cmd::tree::MoveArgs),
    /// Copy a resource.
    Cp(cmd::tree::CopyArgs),
    /// Lock a resource; prints the lock token.
    Lock(cmd::lock::LockArgs),
    /// Release a lock.
    Unlock(cmd::lock::UnlockArgs),
    /// Read, set or remove properties.
    Props(cmd::props::Args),
    /// Upload what is new or changed in a local folder (--delete: mirror it).
    Sync(cmd::sync::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let local = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Passwd(args) => passwd::run(args),
        command => {
            init_tracing(false);
            return client(command);
        }
    };
    match local {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("davit: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn client(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("davit: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async move {
        match command {
            Command::Serve(_) | Command::Passwd(_) => unreachable!("handled in main"),
            Command::Ls(a) => cmd::ls::run(a).await,
            Command::Get(a) => cmd::transfer::get(a).await,
            Command::Put(a) => cmd::transfer::put(a).await,
            Command::Mkdir(a) => cmd::tree::mkdir(a).await,
            Command::Rm(a) => cmd::tree::rm(a).await,
            Command::Mv(a) => cmd::tree::mv(a).await,
            Command::Cp(a) => cmd::tree::cp(a).await,
            Command::Lock(a) => cmd::lock::lock(a).await,
            Command::Unlock(a) => cmd::lock::unlock(a).await,
            Command::Props(a) => cmd::props::run(a).await,
            Command::Sync(a) => cmd::sync::run(a).await,
        }
    });
    output::exit_code(outcome)
}

/// `DAVIT_LOG` takes levels per target (`info`, `warn,davit_server=debug`); a plain
/// target filter, since span and field filters (and the regex engine behind them) cost
/// startup time and memory for nothing here.
pub(crate) fn init_tracing(json: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let filter = match std::env::var("DAVIT_LOG") {
        Ok(spec) => spec.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("DAVIT_LOG: {e}; logging at info");
            Targets::new().with_default(LevelFilter::INFO)
        }),
        Err(_) => Targets::new().with_default(LevelFilter::INFO),
    };
    let (text, json) = if json {
        (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            ),
        )
    } else {
        (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colour codes only for a person at a terminal, not in log files.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            ),
            None,
        )
    };
    tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(filter)
        .init();
}
