//! A cluster's documents in etcd: read the document and its files at one revision,
//! push a bundle in one transaction (guarded by the revision it replaces), and walk
//! the document's earlier revisions. Connecting and every call are bounded in time;
//! each failure is a message naming what failed.

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, GetResponse, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
    WatchStream,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::bundle::{document_sha256, Bundle};
use super::layout::Layout;
use crate::config::raw::{FleetSection, FleetTls};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const READ_ATTEMPTS: u32 = 3;
const READ_RETRY: Duration = Duration::from_millis(300);

/// How to reach a cluster's etcd: its client URLs, a user and password, TLS.
#[derive(Clone)]
pub struct Access {
    pub endpoints: Vec<String>,
    pub user: Option<(String, String)>,
    pub tls: Option<TlsOptions>,
}

impl Access {
    /// From a `[fleet]` section (or the command line's same settings): the user and
    /// password from the environment variables it names, the TLS files read now.
    pub fn of(f: &FleetSection) -> Result<Self, String> {
        let user = match (&f.username_env, &f.password_env) {
            (Some(name), Some(password)) => Some((env(name)?, env(password)?)),
            _ => None,
        };
        let tls = f.tls.as_ref().map(tls_options).transpose()?;
        Ok(Self {
            endpoints: f.etcd.clone(),
            user,
            tls,
        })
    }
}

/// The variable `name` of the environment, which `[fleet]` names.
fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("fleet: the environment has no {name}"))
}

fn tls_options(tls: &FleetTls) -> Result<TlsOptions, String> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut options = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(options)
}

/// A document as stored: its bundle and the revision that last changed it.
#[derive(Debug)]
pub struct Stored {
    pub bundle: Bundle,
    pub revision: i64,
    /// The store's revision the bundle was read at (a watch goes on from the next).
    pub read_at: i64,
}

/// The `pushed` record written beside each document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pushed {
    pub sha256: String,
    /// Unix seconds.
    pub at: u64,
    /// `user@host` of the push.
    pub by: String,
}

/// A running node's record under `nodes/ID`, kept under its lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The revision of the document it serves.
    pub revision: i64,
    pub sha256: String,
    /// Unix seconds.
    pub loaded_at: u64,
}

/// One revision of the document, for `fleet history`.
#[derive(Debug)]
pub struct Revision {
    pub revision: i64,
    pub pushed: Option<Pushed>,
    pub sha256: String,
}

#[derive(Debug)]
pub enum PushError {
    /// The document is not at the revision the push was told to expect.
    Stale {
        expected: i64,
        current: i64,
    },
    /// Another push changed the document after this one read it at `read`.
    Raced {
        read: i64,
    },
    Etcd(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Stale { expected, current } => write!(
                f,
                "the cluster's config is at revision {current}, not {expected}: someone pushed meanwhile; look at it and push again"
            ),
            PushError::Raced { read } => write!(
                f,
                "another push changed the cluster's config after revision {read}; look at it and push again"
            ),
            PushError::Etcd(e) => write!(f, "{e}"),
        }
    }
}

pub struct Fleet {
    client: Client,
    layout: Layout,
    /// The client URLs, for messages.
    endpoints: String,
}

impl Fleet {
    /// Connects to the first of the endpoints that answers, trying them from a place
    /// that differs between processes so that nodes spread over the members. One
    /// endpoint at a time: a member that is down is skipped here rather than tried
    /// again by every later call; when the one in use fails, the caller connects again.
    pub async fn connect(access: &Access, layout: Layout) -> Result<Self, String> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(CALL_TIMEOUT);
        if let Some((name, password)) = &access.user {
            options = options.with_user(name, password);
        }
        if let Some(tls) = &access.tls {
            options = options.with_tls(tls.clone());
        }
        let endpoints = &access.endpoints;
        let start = std::process::id() as usize % endpoints.len().max(1);
        let mut failures = Vec::new();
        for endpoint in endpoints.iter().cycle().skip(start).take(endpoints.len()) {
            let probe = async {
                let mut client = Client::connect([endpoint], Some(options.clone())).await?;
                client.status().await?;
                Ok::<_, etcd_client::Error>(client)
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
                Ok(Ok(client)) => {
                    return Ok(Self {
                        client,
                        layout,
                        endpoints: endpoint.clone(),
                    })
                }
                Ok(Err(e)) => failures.push(format!("{endpoint}: {e}")),
                Err(_) => {
                    failures.push(format!("{endpoint}: no answer within {CONNECT_TIMEOUT:?}"))
                }
            }
        }
        Err(format!(
            "no etcd endpoint answered: {}",
            failures.join("; ")
        ))
    }

    /// The connected client, for what another module keeps in the cluster (ACME).
    pub fn into_client(self) -> Client {
        self.client
    }

    /// A range read, tried up to [`READ_ATTEMPTS`] times: a member going away makes
    /// the next read fail once while the cluster elects a leader or the client moves
    /// to another endpoint. Reads change nothing, so trying again is safe.
    async fn get(
        &self,
        key: impl Into<Vec<u8>>,
        options: Option<GetOptions>,
    ) -> Result<GetResponse, etcd_client::Error> {
        let key = key.into();
        let mut attempt = 1;
        loop {
            let mut client = self.client.clone();
            match client.get(key.clone(), options.clone()).await {
                Err(e) if attempt < READ_ATTEMPTS && !is_answer(&e) => {
                    attempt += 1;
                    tokio::time::sleep(READ_RETRY).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// An etcd failure while doing `what`, as a message naming the endpoints.
    fn failed<'a>(&'a self, what: &'a str) -> impl Fn(etcd_client::Error) -> String + 'a {
        move |e| format!("etcd {}: {what}: {e}", self.endpoints)
    }

    /// The document and its files at `revision` (the latest when `None`); `None` when
    /// the cluster has no document then.
    pub async fn read(&mut self, revision: Option<i64>) -> Result<Option<Stored>, String> {
        let mut options = GetOptions::new();
        if let Some(r) = revision {
            options = options.with_revision(r);
        }
        let got = self
            .get(self.layout.config(), Some(options))
            .await
            .map_err(self.failed("reading the config"))?;
        let Some(config) = got.kvs().first() else {
            return Ok(None);
        };
        // The files at the same revision as the document.
        let at = revision.unwrap_or_else(|| got.header().map_or(0, |h| h.revision()));
        let files = self
            .get(
                self.layout.files_prefix(),
                Some(GetOptions::new().with_prefix().with_revision(at)),
            )
            .await
            .map_err(self.failed("reading the config's files"))?;
        let mut bundle = Bundle {
            document: config
                .value_str()
                .map_err(|e| format!("etcd: the config is no text: {e}"))?
                .to_owned(),
            files: BTreeMap::new(),
        };
        for kv in files.kvs() {
            let key = kv.key_str().map_err(|e| format!("etcd: a file key: {e}"))?;
            if let Some(path) = self.layout.file_path(key) {
                bundle.files.insert(path.to_owned(), kv.value().to_vec());
            }
        }
        Ok(Some(Stored {
            bundle,
            revision: config.mod_revision(),
            read_at: at,
        }))
    }

    /// Changes to the document and its files from the store's revision `from` on (the
    /// first response may say the history was compacted meanwhile).
    pub async fn watch(&mut self, from: i64) -> Result<WatchStream, String> {
        let options = WatchOptions::new().with_prefix().with_start_revision(from);
        self.client
            .watch(self.layout.root(), Some(options))
            .await
            .map_err(self.failed("watching the config"))
    }

    /// A lease of `ttl` seconds and what keeps it alive.
    pub async fn lease(
        &mut self,
        ttl: i64,
    ) -> Result<(i64, LeaseKeeper, LeaseKeepAliveStream), String> {
        let granted = self
            .client
            .lease_grant(ttl, None)
            .await
            .map_err(self.failed("taking a lease"))?;
        let (keeper, acks) = self
            .client
            .lease_keep_alive(granted.id())
            .await
            .map_err(self.failed("keeping the lease"))?;
        Ok((granted.id(), keeper, acks))
    }

    /// Writes this node's record under `lease`.
    pub async fn register(
        &mut self,
        id: &str,
        record: &NodeRecord,
        lease: i64,
    ) -> Result<(), String> {
        let value = serde_json::to_vec(record).unwrap_or_default();
        let options = PutOptions::new().with_lease(lease);
        self.client
            .put(self.layout.node(id), value, Some(options))
            .await
            .map_err(self.failed("registering the node"))?;
        Ok(())
    }

    /// The registered nodes and the revision of the cluster's document (0: none).
    pub async fn nodes(&mut self) -> Result<(Vec<(String, NodeRecord)>, i64), String> {
        let config = self
            .get(self.layout.config(), None)
            .await
            .map_err(self.failed("reading the config"))?;
        let latest = config.kvs().first().map_or(0, |kv| kv.mod_revision());
        let prefix = self.layout.nodes_prefix();
        let listed = self
            .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(self.failed("listing the nodes"))?;
        let nodes = listed
            .kvs()
            .iter()
            .filter_map(|kv| {
                let id = kv.key_str().ok()?.strip_prefix(prefix.as_str())?.to_owned();
                Some((id, serde_json::from_slice(kv.value()).ok()?))
            })
            .collect();
        Ok((nodes, latest))
    }

    /// Whether `key` (from a watch) is the document or one of its files.
    pub fn is_config_key(&self, key: &[u8]) -> bool {
        let key = String::from_utf8_lossy(key);
        key == self.layout.config() || self.layout.file_path(&key).is_some()
    }

    /// The revision that stored `pushed`, if the cluster's `pushed` record is it.
    async fn stored_push(&mut self, pushed: &Pushed) -> Option<i64> {
        let key = self.layout.pushed();
        let answer = self.get(key.as_str(), None).await.ok()?;
        let kv = answer.kvs().first()?;
        let stored: Pushed = serde_json::from_slice(kv.value()).ok()?;
        (stored == *pushed).then(|| kv.mod_revision())
    }

    /// Stores `bundle` as the cluster's document in one transaction, replacing its
    /// files (those it no longer reads are deleted). With `expect`, only if the
    /// document is still at that revision (0: there is none yet). Returns the new
    /// revision.
    pub async fn push(&mut self, bundle: &Bundle, expect: Option<i64>) -> Result<i64, PushError> {
        let config = self.layout.config();
        let current = self
            .get(config.as_str(), None)
            .await
            .map_err(|e| PushError::Etcd(self.failed("reading the config")(e)))?;
        let current_revision = current.kvs().first().map_or(0, |kv| kv.mod_revision());
        if let Some(expected) = expect.filter(|&e| e != current_revision) {
            return Err(PushError::Stale {
                expected,
                current: current_revision,
            });
        }
        let stored_files = self
            .get(
                self.layout.files_prefix(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )
            .await
            .map_err(|e| PushError::Etcd(self.failed("listing the config's files")(e)))?;
        let mut ops = vec![TxnOp::put(config.as_str(), bundle.document.as_str(), None)];
        let pushed = Pushed {
            sha256: bundle.sha256(),
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            by: pusher(),
        };
        let record = serde_json::to_vec(&pushed).unwrap_or_default();
        ops.push(TxnOp::put(self.layout.pushed(), record, None));
        for (path, content) in &bundle.files {
            ops.push(TxnOp::put(self.layout.file(path), content.clone(), None));
        }
        for kv in stored_files.kvs() {
            let gone = kv
                .key_str()
                .ok()
                .and_then(|k| self.layout.file_path(k))
                .is_some_and(|path| !bundle.files.contains_key(path));
            if gone {
                ops.push(TxnOp::delete(kv.key(), None));
            }
        }
        let txn = Txn::new()
            .when([Compare::mod_revision(
                config.as_str(),
                CompareOp::Equal,
                current_revision,
            )])
            .and_then(ops);
        let done = match self.client.txn(txn).await {
            Ok(done) => done,
            // The answer may be lost after etcd applied it: the `pushed` record, which
            // names this push's time and user, tells.
            Err(e) => {
                let failed = self.failed("writing the config")(e);
                return match self.stored_push(&pushed).await {
                    Some(revision) => Ok(revision),
                    None => Err(PushError::Etcd(format!(
                        "{failed} (whether it was stored is unknown: see `tollgate fleet history`)"
                    ))),
                };
            }
        };
        if !done.succeeded() {
            return Err(PushError::Raced {
                read: current_revision,
            });
        }
        Ok(done.header().map_or(0, |h| h.revision()))
    }

    /// The document's revisions, newest first, at most `limit`; stops where etcd has
    /// compacted the history.
    pub async fn history(&mut self, limit: usize) -> Result<(Vec<Revision>, bool), String> {
        let mut revisions = Vec::new();
        let mut at: Option<i64> = None;
        while revisions.len() < limit {
            let options = at.map(|r| GetOptions::new().with_revision(r));
            let got = match self.get(self.layout.config(), options).await {
                Ok(got) => got,
                Err(e) if is_compacted(&e) => return Ok((revisions, true)),
                Err(e) => return Err(self.failed("reading the config's history")(e)),
            };
            let Some(kv) = got.kvs().first() else { break };
            let revision = kv.mod_revision();
            let pushed = self
                .get(
                    self.layout.pushed(),
                    Some(GetOptions::new().with_revision(revision)),
                )
                .await
                .ok()
                .and_then(|p| {
                    p.kvs()
                        .first()
                        .and_then(|kv| serde_json::from_slice(kv.value()).ok())
                });
            revisions.push(Revision {
                revision,
                pushed,
                sha256: document_sha256(kv.value()),
            });
            if revision <= 1 {
                break;
            }
            at = Some(revision - 1);
        }
        Ok((revisions, false))
    }
}

/// `user@host` of this process, for the `pushed` record.
fn pusher() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    let host = super::host_name();
    format!("{user}@{host}")
}

/// Whether etcd answered `e` itself (a definite refusal, not worth retrying), rather
/// than the request failing on its way.
fn is_answer(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::GRpcStatus(status) => !matches!(
            status.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
        ),
        _ => false,
    }
}

/// Whether `e` says the revision asked for was compacted (etcd's `ErrCompacted`).
fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::OutOfRange)
}
