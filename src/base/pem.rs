//! PEM certificate files: every certificate of one, and a trust store made of them.
//! Fails with the file's name and what is wrong: unreadable, not PEM, no certificate.

use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::X509;
use std::path::Path;

/// Every certificate in a PEM file, in file order (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<X509>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = X509::stack_from_pem(&pem)
        .map_err(|e| format!("{}: not a PEM certificate file ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

/// A store trusting `cas` (read from `path`) and nothing else.
pub fn trust_store(cas: &[X509], path: &Path) -> Result<X509Store, String> {
    let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    for ca in cas {
        store
            .add_cert(ca.clone())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(store.build())
}
