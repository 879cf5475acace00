//! A fleet configured from etcd (v3 API, through the `etcd-client` crate): the layout
//! of a cluster's keys, the bundle a push carries (the document and every file it
//! reads), and the store that reads, pushes and lists revisions in one transaction
//! each. `tollgate push` and `tollgate fleet` are built on it (`commands`), and a
//! node's start (`node`). Every etcd
//! call is bounded in time; a failure is an error message, never a partial write.

pub mod bundle;
pub mod commands;
pub mod follow;
pub mod layout;
pub mod node;
pub mod store;

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// The async runtime a command or a start talks to etcd on, before Pingora's exist.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Creates `dir` (and its parents) readable by this user only.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    anyhow::Context::with_context(
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
        || format!("cannot create {}", dir.display()),
    )
}

/// This machine's name (`uname -n`), for the `pushed` record and node ids.
fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}
