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
