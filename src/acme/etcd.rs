//! ACME's storage on a fleet (`storage = "etcd"`): the account, the certificates
//! and keys, and the HTTP-01 tokens in flight, under the cluster's `acme/` keys, so
//! that every node serves what one node ordered and answers any node's challenges.
//! One node orders a set at a time: it holds the set's etcd lock, attached to a lease
//! it keeps alive while ordering (a node that dies releases it when the lease ends).
//! Every call is bounded in time; a failure is a message, and the next call connects
//! again.

use etcd_client::{Client, GetOptions, LockOptions, PutOptions, Txn, TxnOp};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::storage::StoredCert;
use crate::config::raw::FleetSection;
use crate::fleet::layout::Layout;
use crate::fleet::store::{Access, Fleet};

/// How long a published token lives (an order takes less).
const TOKEN_TTL_SECS: i64 = 600;
/// The lease of an order's lock, kept alive every third of it while ordering.
const LOCK_TTL_SECS: i64 = 30;
/// How long a node waits for another's order before looking at the storage again
/// (less than the client's call timeout, which would make the wait a failure).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

pub struct EtcdStorage {
    access: Access,
    layout: Layout,
    client: tokio::sync::Mutex<Option<Client>>,
    tokens: PublishedTokens,
}

/// The tokens every node published, read whole: a lookup waits for a read that
/// began after it arrived (so it sees a token published before), and all the
/// lookups waiting meanwhile share that read. However many requests for
/// `/.well-known/acme-challenge/…` a client sends (they pass no deny list or limit),
/// etcd sees one read at a time from this node.
#[derive(Default)]
struct PublishedTokens {
    /// Reads begun so far.
    begun: AtomicU64,
    /// The last read: the number it had among those begun, and what it found.
    last: tokio::sync::Mutex<(u64, HashMap<String, String>)>,
}

/// An order's lock: released (and its lease revoked) when dropped.
pub struct OrderLock {
    client: Client,
    key: Vec<u8>,
    lease: i64,
    keeper: tokio::task::JoinHandle<()>,
}

impl EtcdStorage {
    pub fn new(fleet: &FleetSection) -> Result<Self, String> {
        Ok(Self {
            access: Access::of(fleet)?,
            layout: Layout::new(&fleet.cluster)?,
            client: tokio::sync::Mutex::default(),
            tokens: PublishedTokens::default(),
        })
    }

    async fn client(&self) -> Result<Client, String> {
        let mut cached = self.client.lock().await;
        if let Some(client) = cached.as_ref() {
            return Ok(client.clone());
        }
        let client = Fleet::connect(&self.access, self.layout.clone())
            .await?
            .into_client();
        *cached = Some(client.clone());
        Ok(client)
    }

    /// Forgets the connection after a failure (the next call connects again).
    async fn failed(&self, what: &str, e: etcd_client::Error) -> String {
        *self.client.lock().await = None;
        format!("etcd: {what}: {e}")
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let mut client = self.client().await?;
        match client.get(self.layout.acme(key), None).await {
            Ok(got) => Ok(got.kvs().first().map(|kv| kv.value().to_vec())),
            Err(e) => Err(self.failed(&format!("reading acme/{key}"), e).await),
        }
    }

    pub async fn account(&self, digest: &str) -> Result<Option<String>, String> {
        let found = self.get(&format!("accounts/{digest}")).await?;
        Ok(found.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    pub async fn save_account(&self, digest: &str, credentials: &str) -> Result<(), String> {
        let mut client = self.client().await?;
        let key = self.layout.acme(&format!("accounts/{digest}"));
        if let Err(e) = client.put(key, credentials, None).await {
            return Err(self.failed("storing the account", e).await);
        }
        Ok(())
    }

    pub async fn certificate(&self, name: &str) -> Result<Option<StoredCert>, String> {
        let (Some(chain_pem), Some(key_pem)) = (
            self.get(&format!("certificates/{name}/fullchain")).await?,
            self.get(&format!("certificates/{name}/key")).await?,
        ) else {
            return Ok(None);
        };
        Ok(Some(StoredCert { chain_pem, key_pem }))
    }

    /// The chain and its key in one transaction.
    pub async fn save_certificate(&self, name: &str, cert: &StoredCert) -> Result<(), String> {
        let mut client = self.client().await?;
        let key = |part: &str| self.layout.acme(&format!("certificates/{name}/{part}"));
        let txn = Txn::new().and_then([
            TxnOp::put(key("fullchain"), cert.chain_pem.clone(), None),
            TxnOp::put(key("key"), cert.key_pem.clone(), None),
        ]);
        if let Err(e) = client.txn(txn).await {
            return Err(self.failed("storing the certificate", e).await);
        }
        Ok(())
    }

    /// Publishes an HTTP-01 answer for every node, for [`TOKEN_TTL_SECS`].
    pub async fn publish_token(&self, token: &str, key_authorization: &str) -> Result<(), String> {
        let mut client = self.client().await?;
        let lease = match client.lease_grant(TOKEN_TTL_SECS, None).await {
            Ok(lease) => lease.id(),
            Err(e) => return Err(self.failed("a lease for a token", e).await),
        };
        let options = PutOptions::new().with_lease(lease);
        let key = self.layout.acme(&format!("tokens/{token}"));
        if let Err(e) = client.put(key, key_authorization, Some(options)).await {
            return Err(self.failed("publishing a token", e).await);
        }
        Ok(())
    }

    /// The answer a node published for `token`. What cannot be a token (RFC 8555
    /// §8.3: base64url, at least 128 bits) is not looked up.
    pub async fn token(&self, token: &str) -> Option<String> {
        let plausible = (22..=256).contains(&token.len())
            && (token.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plausible {
            return None;
        }
        let arrived = self.tokens.begun.load(Relaxed);
        let mut last = self.tokens.last.lock().await;
        if last.0 <= arrived {
            let number = self.tokens.begun.fetch_add(1, Relaxed) + 1;
            match self.published().await {
                Ok(all) => *last = (number, all),
                Err(e) => {
                    log::warn!("acme: HTTP-01 token lookup: {e}");
                    return None;
                }
            }
        }
        last.1.get(token).cloned()
    }

    /// Every token published, with its answer.
    async fn published(&self) -> Result<HashMap<String, String>, String> {
        let mut client = self.client().await?;
        let prefix = self.layout.acme("tokens/");
        let got = match client
            .get(prefix.clone(), Some(GetOptions::new().with_prefix()))
            .await
        {
            Ok(got) => got,
            Err(e) => return Err(self.failed("reading the HTTP-01 tokens", e).await),
        };
        Ok((got.kvs().iter())
            .filter_map(|kv| {
                let token = kv.key_str().ok()?.strip_prefix(prefix.as_str())?;
                Some((
                    token.to_owned(),
                    String::from_utf8_lossy(kv.value()).into_owned(),
                ))
            })
            .collect())
    }

    /// The lock of the set `name`; `Ok(None)` when another node held it for
    /// [`LOCK_WAIT`] (it is ordering).
    pub async fn lock(&self, name: &str) -> Result<Option<OrderLock>, String> {
        let mut client = self.client().await?;
        let lease = match client.lease_grant(LOCK_TTL_SECS, None).await {
            Ok(lease) => lease.id(),
            Err(e) => return Err(self.failed("a lease for the order lock", e).await),
        };
        let mut keeping = client.clone();
        let keeper = tokio::spawn(async move {
            let Ok((mut keeper, _acks)) = keeping.lease_keep_alive(lease).await else {
                return;
            };
            loop {
                tokio::time::sleep(Duration::from_secs(LOCK_TTL_SECS as u64 / 3)).await;
                if keeper.keep_alive().await.is_err() {
                    return;
                }
            }
        });
        let options = LockOptions::new().with_lease(lease);
        let name = self.layout.acme(&format!("locks/{name}"));
        let acquired = tokio::time::timeout(LOCK_WAIT, client.lock(name, Some(options))).await;
        let lock = |key: Vec<u8>, keeper| OrderLock {
            client: client.clone(),
            key,
            lease,
            keeper,
        };
        match acquired {
            Ok(Ok(held)) => Ok(Some(lock(held.key().to_vec(), keeper))),
            // Not acquired: revoking the lease withdraws the waiting request.
            Ok(Err(e)) => {
                drop(lock(Vec::new(), keeper));
                Err(self.failed("taking the order lock", e).await)
            }
            Err(_) => {
                drop(lock(Vec::new(), keeper));
                Ok(None)
            }
        }
    }
}

impl Drop for OrderLock {
    fn drop(&mut self) {
        self.keeper.abort();
        let (mut client, key, lease) = (
            self.client.clone(),
            std::mem::take(&mut self.key),
            self.lease,
        );
        tokio::spawn(async move {
            if !key.is_empty() {
                let _ = client.unlock(key).await;
            }
            let _ = client.lease_revoke(lease).await;
        });
    }
}
