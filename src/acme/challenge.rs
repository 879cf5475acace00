//! HTTP-01: the key authorizations of the orders in flight, by token, and the stage
//! that answers `GET /.well-known/acme-challenge/TOKEN` on every plain listener,
//! first of its stages (before deny lists, redirects, routing and authentication).
//! A token not in flight gets 404; other paths go on untouched. On a fleet, a token
//! another node published is looked up in etcd (`etcd::EtcdStorage::token`: one read
//! at a time however many requests ask; a failed lookup is a 404, logged).

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Storage;
use crate::stage::{Cx, Declared, Hooks, Reply, Stage, StagesBuilder, Step};

/// How long a fleet's token lookup may take.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// Key authorizations by token, while their orders are in flight.
#[derive(Default)]
pub struct HttpTokens(Mutex<HashMap<String, String>>);

impl HttpTokens {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.lock()
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    pub fn get(&self, token: &str) -> Option<String> {
        self.lock().get(token).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Http01 {
    tokens: Arc<HttpTokens>,
    /// The fleet's storage, where other nodes publish their tokens.
    fleet: Option<Arc<Storage>>,
}

/// Adds the HTTP-01 answer to a plain listener's stages.
pub fn install(tokens: &Arc<HttpTokens>, storage: &Arc<Storage>, stages: &mut StagesBuilder) {
    let fleet = matches!(**storage, Storage::Etcd(_)).then(|| storage.clone());
    stages.add(Http01 {
        tokens: tokens.clone(),
        fleet,
    });
}

fn answer(key_authorization: Option<String>) -> Reply {
    match key_authorization {
        Some(answer) => Reply::with_content(
            StatusCode::OK,
            HeaderValue::from_static("application/octet-stream"),
            Bytes::from(answer),
        ),
        None => Reply::new(StatusCode::NOT_FOUND, "no ACME challenge with this token"),
    }
}

impl Stage for Http01 {
    fn name(&self) -> &'static str {
        "acme_http01"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::REQUEST)
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        let view = cx.view();
        let Some(token) = view.path.strip_prefix(CHALLENGE_PATH) else {
            return Step::Continue;
        };
        match (self.tokens.get(token), self.fleet.as_deref()) {
            (Some(local), _) => Step::Reply(answer(Some(local))),
            (None, Some(Storage::Etcd(etcd))) => {
                let token = token.to_owned();
                Step::Wait(Box::pin(async move {
                    let found = tokio::time::timeout(LOOKUP_TIMEOUT, etcd.token(&token)).await;
                    Err(answer(found.ok().flatten()))
                }))
            }
            (None, _) => Step::Reply(answer(None)),
        }
    }
}
