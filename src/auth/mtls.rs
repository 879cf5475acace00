//! Client certificates as credentials: a certificate the listener verified (see
//! `tls`) is matched to a consumer by a subject alternative name, the subject's
//! common name, or its SHA-256 fingerprint. No certificate: nothing to check (a
//! route may accept other authenticators); an unmatched one is rejected.

use std::sync::Arc;

use super::{Principal, Reason, Verdict};
use crate::tls::ClientCert;

pub enum CertMatch {
    San(String),
    SubjectCn(String),
    Sha256([u8; 32]),
}

impl CertMatch {
    fn matches(&self, cert: &ClientCert) -> bool {
        match self {
            CertMatch::San(name) => cert.has_san(name),
            CertMatch::SubjectCn(cn) => cert.common_name.as_deref() == Some(cn.as_str()),
            CertMatch::Sha256(fp) => cert.sha256 == *fp,
        }
    }
}

pub struct CertConsumer {
    pub matcher: CertMatch,
    pub disabled: bool,
    /// Built once: the principal a matching certificate yields.
    pub principal: Arc<Principal>,
}

pub struct CertConsumers {
    pub consumers: Vec<CertConsumer>,
}

impl CertConsumers {
    /// The first consumer (in config order) the certificate matches.
    pub fn verify(&self, cert: &ClientCert) -> Verdict {
        let fingerprint = cert.sha256_hex();
        match self.consumers.iter().find(|c| c.matcher.matches(cert)) {
            Some(c) if c.disabled => Verdict::rejected_with(
                Reason::DisabledConsumer,
                Some(&c.principal.id),
                Some(&fingerprint),
            ),
            Some(c) => Verdict::Accepted(c.principal.clone()),
            None => Verdict::rejected_with(Reason::UnknownCertificate, None, Some(&fingerprint)),
        }
    }
}
