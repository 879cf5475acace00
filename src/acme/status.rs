//! `tollgate acme status -c FILE`: each set of domains of the config, its stored
//! certificate, expiry and next renewal by `renew_before` (the CA's window, which a
//! running process asks for, may bring it forward: `GET /acme`), read from the storage
//! (a directory or the fleet's etcd; no running process needed). Fails with a message
//! when the config or the storage cannot be read.

use std::fmt::Write;

use super::cert_sets;
use super::schedule::renew_at;
use crate::config::raw::RawConfig;
use crate::tls::ServerCert;

/// The report, one block per set.
pub fn report(raw: &RawConfig) -> Result<String, String> {
    let Some(settings) = &raw.acme else {
        return Err("the config has no [acme] section".into());
    };
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    let Some(storage) = super::storage(raw, &mut problems, &mut warnings) else {
        let why = problems.iter().map(|(at, e)| format!("{at}: {e}"));
        return Err(why.chain(warnings).collect::<Vec<_>>().join("; "));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("a runtime to read the storage: {e}"))?;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(i64::MAX);
    let mut out = String::new();
    for set in cert_sets(raw) {
        let _ = writeln!(
            out,
            "{} ({}, listeners {}, {})",
            set.id,
            set.domains.join(", "),
            set.listeners.join(", "),
            set.challenge.as_str()
        );
        let stored = runtime.block_on(storage.certificate(&set.id))?;
        let cert = stored.map(|s| ServerCert::from_pem(&s.chain_pem, &s.key_pem, set.id.clone()));
        match cert {
            None => {
                let _ = writeln!(
                    out,
                    "  no certificate stored: it is ordered when tollgate starts"
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(
                    out,
                    "  stored certificate unreadable ({e}): it is ordered again"
                );
            }
            Some(Ok(cert)) => {
                let renewal = renew_at(cert.not_before, cert.not_after, settings.renew_before);
                let _ = writeln!(out, "  names:   {}", cert.names().join(", "));
                let _ = writeln!(
                    out,
                    "  expires: {} ({})",
                    date(cert.not_after),
                    from_now(cert.not_after - now)
                );
                let _ = writeln!(
                    out,
                    "  renewal: {} ({})",
                    date(renewal),
                    from_now(renewal - now)
                );
            }
        }
    }
    Ok(out)
}

fn date(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn from_now(seconds: i64) -> String {
    let span = humantime::format_duration(std::time::Duration::from_secs(seconds.unsigned_abs()));
    match seconds >= 0 {
        true => format!("in {span}"),
        false => format!("{span} ago"),
    }
}
