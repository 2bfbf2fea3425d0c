//! Integration tests: each starts the real server on port 0 (memory, or a temp folder with

#![allow(unreachable_pub)] // helpers are `pub` for the test modules, not for export
//! SQLite) and talks HTTP to it.

mod support;

mod auth;
mod base_path;
mod copy_move;
mod cors;
mod delete;
mod digest;
mod get;
mod hidden;
mod http1;
mod input;
mod limits;
mod lock;
mod metrics;
mod mkcol;
mod options;
mod post;
mod propfind;
mod proppatch;
mod put;
mod read_only;
mod recover;
mod spelling;
