//! `tollgate push`, `tollgate fleet status` and `tollgate fleet history`. Each returns an exit code and prints
//! what it did or why not; a push exits 0 only once etcd has stored the revision.
//! The check a document must pass is the caller's (`cli`: the same as `check`), so a
//! pushed document is one `tollgate check` accepts, its files included.

use std::path::{Path, PathBuf};

use super::bundle::Bundle;
use super::layout::Layout;
use super::store::{Access, Fleet};
use crate::config::raw::FleetSection;

/// The cluster a command works on, and how to reach its etcd (the settings of a
/// node's `[fleet]`; its `cache` is not used).
pub struct Target {
    pub fleet: FleetSection,
}

impl Target {
    async fn connect(&self) -> Result<Fleet, String> {
        Fleet::connect(&Access::of(&self.fleet)?, Layout::new(&self.fleet.cluster)?).await
    }
}

/// What to push: a file, or a revision already stored (a roll back).
pub enum Source {
    File(PathBuf),
    Revision(i64),
}

/// Checks and pushes; `check` prints the errors of a document that does not pass.
pub fn push(
    target: &Target,
    source: &Source,
    expect: Option<i64>,
    check: impl Fn(&Path) -> bool,
) -> i32 {
    let outcome =
        super::runtime().and_then(|rt| rt.block_on(checked_push(target, source, expect, check)));
    match outcome {
        Ok(message) => {
            println!("{message}");
            0
        }
        Err(e) => {
            eprintln!("tollgate: not pushed: {e}");
            1
        }
    }
}

async fn checked_push(
    target: &Target,
    source: &Source,
    expect: Option<i64>,
    check: impl Fn(&Path) -> bool,
) -> Result<String, String> {
    // A file is checked before etcd is asked anything; a revision is read from it.
    let (mut fleet, bundle, from) = match source {
        Source::File(path) => {
            if !check(path) {
                return Err("fix the errors above first".to_owned());
            }
            let bundle = Bundle::read(path)?;
            (target.connect().await?, bundle, path.display().to_string())
        }
        Source::Revision(revision) => {
            let mut fleet = target.connect().await?;
            let stored = fleet.read(Some(*revision)).await?.ok_or_else(|| {
                format!(
                    "cluster {} had no config at revision {revision}",
                    target.fleet.cluster
                )
            })?;
            let dir = scratch_dir()?;
            let document = stored.bundle.write_to(&dir);
            let passed = document.as_deref().map(&check);
            let _ = std::fs::remove_dir_all(&dir);
            if !passed? {
                return Err(format!(
                    "revision {revision} does not pass the checks of this tollgate"
                ));
            }
            (fleet, stored.bundle, format!("revision {revision}"))
        }
    };
    match fleet.push(&bundle, expect).await {
        Ok(revision) => Ok(format!(
            "pushed {from} to cluster {} as revision {revision} (sha256 {}, {} files)",
            target.fleet.cluster,
            bundle.sha256(),
            bundle.files.len()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Prints each registered node, the revision it serves and whether that is the latest;
/// exit 0 when every node serves the latest.
pub fn status(target: &Target) -> i32 {
    let listed = super::runtime().and_then(|rt| {
        rt.block_on(async {
            let mut fleet = target.connect().await?;
            fleet.nodes().await
        })
    });
    let (nodes, latest) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return 1;
        }
    };
    println!(
        "cluster {}: config at revision {latest}, {} nodes",
        target.fleet.cluster,
        nodes.len()
    );
    let mut behind = 0;
    for (id, node) in &nodes {
        let state = match node.revision == latest {
            true => "latest".to_owned(),
            false => {
                behind += 1;
                "BEHIND".to_owned()
            }
        };
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(node.loaded_at);
        println!(
            "{id}  revision {}  {state}  loaded {}  sha256 {}",
            node.revision,
            humantime::format_rfc3339_seconds(at),
            node.sha256
        );
    }
    i32::from(behind > 0)
}

/// Prints the document's revisions, newest first.
pub fn history(target: &Target, limit: usize) -> i32 {
    let listed = super::runtime().and_then(|rt| {
        rt.block_on(async {
            let mut fleet = target.connect().await?;
            fleet.history(limit).await
        })
    });
    let (revisions, compacted) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return 1;
        }
    };
    if revisions.is_empty() {
        println!("cluster {} has no config", target.fleet.cluster);
    }
    for r in &revisions {
        let (at, by) = r.pushed.as_ref().map_or(("-".to_owned(), "-"), |p| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(p.at);
            (
                humantime::format_rfc3339_seconds(at).to_string(),
                p.by.as_str(),
            )
        });
        println!("{:>10}  {at}  {by}  sha256 {}", r.revision, r.sha256);
    }
    if compacted {
        println!("(older revisions were compacted by etcd)");
    }
    0
}

/// A new directory, this user's only, to write a stored revision into for its check.
fn scratch_dir() -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("tollgate-push-{}-{nanos}", std::process::id()));
    if dir.exists() {
        return Err(format!("{} exists already", dir.display()));
    }
    super::private_dir(&dir).map_err(|e| format!("{e:#}"))?;
    Ok(dir)
}
