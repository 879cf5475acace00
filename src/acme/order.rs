//! One conversation with the CA: the account (restored from storage, or created and
//! stored), then an order for a set of domains: each authorization's challenge
//! published (an HTTP-01 token, or a TLS-ALPN-01 certificate), validated, the key and
//! request made here, the chain fetched. Everything published is withdrawn when the
//! order ends, however it ends. Each failure is a message saying what the CA said.

use base64::Engine;
use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use std::time::Duration;

use super::storage::StoredCert;
use super::{proof, AcmeState, CertSet, Storage};
use crate::config::raw::{AcmeSection, ChallengeKind};

/// How long the CA may take to validate, then to issue.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(90));

/// The account for `settings`' CA: stored credentials, or a new account (stored).
pub async fn account(settings: &AcmeSection, storage: &Storage) -> Result<Account, String> {
    let builder = match &settings.ca_file {
        Some(pem) => Account::builder_with_root(pem),
        None => Account::builder(),
    }
    .map_err(|e| format!("ACME client: {e}"))?;
    if let Some(json) = storage.account(&settings.directory).await? {
        let credentials =
            serde_json::from_str(&json).map_err(|e| format!("stored ACME account: {e}"))?;
        return builder
            .from_credentials(credentials)
            .await
            .map_err(|e| format!("ACME directory {}: {e}", settings.directory));
    }
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let eab = match &settings.eab {
        Some(eab) => {
            let hmac = std::env::var(&eab.hmac_env).map_err(|_| {
                format!("acme.eab: environment variable {} is not set", eab.hmac_env)
            })?;
            let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(hmac.trim().trim_end_matches('='))
                .map_err(|_| format!("acme.eab: {} is not base64url", eab.hmac_env))?;
            Some(ExternalAccountKey::new(eab.kid.clone(), &key))
        }
        None => None,
    };
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = builder
        .create(&new, settings.directory.clone(), eab.as_ref())
        .await
        .map_err(|e| format!("creating an ACME account at {}: {e}", settings.directory))?;
    let json = serde_json::to_string(&credentials).map_err(|e| e.to_string())?;
    storage.save_account(&settings.directory, &json).await?;
    log::info!("acme: account created at {}", settings.directory);
    Ok(account)
}

/// Orders a certificate for `set`, answering its challenges through `state`; as the
/// replacement of a certificate (RFC 9773 §5) when `replaces` names one, or anew when
/// the CA does not take it as one (it was replaced already; the CA does not say it).
pub async fn order(
    account: &Account,
    set: &CertSet,
    state: &AcmeState,
    storage: &Storage,
    replaces: Option<CertificateIdentifier<'static>>,
) -> Result<StoredCert, String> {
    let identifiers: Vec<Identifier> = (set.domains.iter())
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let replacing = match replaces {
        Some(replaced) => {
            let replacing = NewOrder::new(&identifiers).replaces(replaced);
            (account.new_order(&replacing).await)
                .inspect_err(|e| {
                    log::info!(
                        "acme {}: the CA did not take the order as a replacement ({e}); \
                         ordering anew",
                        set.id
                    )
                })
                .ok()
        }
        None => None,
    };
    let mut order = match replacing {
        Some(order) => order,
        None => (account.new_order(&NewOrder::new(&identifiers)).await)
            .map_err(|e| format!("new order: {e}"))?,
    };
    let mut published = Published {
        state,
        tokens: Vec::new(),
        names: Vec::new(),
    };
    let kind = match set.challenge {
        ChallengeKind::Http01 => ChallengeType::Http01,
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| format!("authorization: {e}"))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("an authorization is {other:?}")),
        }
        let name = authorization.identifier().to_string();
        let mut challenge = authorization.challenge(kind.clone()).ok_or_else(|| {
            format!(
                "the CA offers no {} challenge for {name}",
                set.challenge.as_str()
            )
        })?;
        let key_authorization = challenge.key_authorization();
        match set.challenge {
            ChallengeKind::Http01 => {
                state
                    .tokens
                    .insert(&challenge.token, key_authorization.as_str());
                published.tokens.push(challenge.token.clone());
                storage
                    .publish_token(&challenge.token, key_authorization.as_str())
                    .await?;
            }
            ChallengeKind::TlsAlpn01 => {
                let cert = proof::alpn_certificate(&name, key_authorization.digest().as_ref())?;
                state.certs.set_challenge(&name, Some(cert));
                published.names.push(name.clone());
            }
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| format!("challenge for {name}: {e}"))?;
    }
    let status = order
        .poll_ready(&POLL)
        .await
        .map_err(|e| format!("waiting for validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!(
            "validation failed ({status:?}): {}",
            why_invalid(&mut order).await
        ));
    }
    drop(published);
    let key = proof::new_key()?;
    let csr = proof::csr(&set.domains, &key)?;
    order
        .finalize_csr(&csr)
        .await
        .map_err(|e| format!("finalizing: {e}"))?;
    let chain = order
        .poll_certificate(&POLL)
        .await
        .map_err(|e| format!("fetching the certificate: {e}"))?;
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(|e| format!("key: {e}"))?;
    Ok(StoredCert {
        chain_pem: chain.into_bytes(),
        key_pem,
    })
}

/// What the CA said about the challenges that failed.
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        if let Ok(state) = authorization.refresh().await {
            let name = state.identifier().to_string();
            for challenge in &state.challenges {
                if let Some(problem) = &challenge.error {
                    reasons.push(format!("{name}: {problem}"));
                }
            }
        }
    }
    match reasons.is_empty() {
        true => "the CA gave no reason".to_owned(),
        false => reasons.join("; "),
    }
}

/// The challenges answered for an order, withdrawn when it ends.
struct Published<'a> {
    state: &'a AcmeState,
    tokens: Vec<String>,
    names: Vec<String>,
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.state.tokens.remove(token);
        }
        for name in &self.names {
            self.state.certs.set_challenge(name, None);
        }
    }
}
