//! The client commands, one module each.

pub(crate) mod lock;
pub(crate) mod ls;
pub(crate) mod props;
pub(crate) mod sync;
pub(crate) mod transfer;
pub(crate) mod tree;
