//! Listeners: unique addresses, and TLS settings that fit together.

use std::collections::HashMap;

use super::{host_pattern, Problems, TomlPath, Unparsed};
use crate::config::raw::{ClientAuth, ListenerSection, RawConfig};

pub(super) fn listeners(raw: &RawConfig, unparsed: &Unparsed, out: &mut Problems) {
    let path = TomlPath::root().key("listeners");
    if raw.listeners.is_empty() && unparsed.listeners.is_empty() {
        out.push((
            path.clone(),
            "at least one listener is needed, e.g. [listeners.public] addr = \"0.0.0.0:8080\""
                .into(),
        ));
    }
    let mut seen = HashMap::new();
    for (name, l) in &raw.listeners {
        if let Some(first) = seen.insert(l.addr, name) {
            out.push((
                path.key(name).key("addr"),
                format!("address {} is already used by listener {first:?}", l.addr),
            ));
        }
        listener_tls(l, &path.key(name), out);
        if l.proxy_protocol && raw.server.trusted_proxies.is_empty() {
            out.push((
                path.key(name).key("proxy_protocol"),
                "PROXY headers are accepted from [server] trusted_proxies only: list the \
                 balancer's addresses there"
                    .into(),
            ));
        }
    }
}

fn listener_tls(l: &ListenerSection, path: &TomlPath, out: &mut Problems) {
    let Some(tls) = &l.tls else {
        return;
    };
    let tp = path.key("tls");
    if l.h2c {
        out.push((
            path.key("h2c"),
            "h2c is for plain listeners; a TLS listener offers HTTP/2 through ALPN (tls.http2)"
                .into(),
        ));
    }
    if l.redirect_https {
        out.push((
            path.key("redirect_https"),
            "only applies to plain listeners".into(),
        ));
    }
    if tls.certificates.is_empty() && tls.acme.is_none() {
        out.push((
            tp.key("certificates"),
            "needs at least one { cert = \"chain.pem\", key = \"key.pem\" }, or acme = \
             { domains = [...] }"
                .into(),
        ));
    }
    for (i, c) in tls.certificates.iter().enumerate() {
        for (j, name) in c.server_names.iter().enumerate() {
            if let Err(why) = host_pattern(name) {
                out.push((
                    tp.key("certificates").index(i).key("server_names").index(j),
                    format!("invalid server name {name:?}: {why}"),
                ));
            }
        }
    }
    match (tls.client_auth, &tls.client_ca) {
        (ClientAuth::None, Some(_)) => out.push((
            tp.key("client_ca"),
            "has no effect without client_auth = \"optional\" or \"require\"".into(),
        )),
        (ClientAuth::Optional | ClientAuth::Require, None) => out.push((
            tp.key("client_auth"),
            "needs client_ca, the CA certificates client certificates must chain to".into(),
        )),
        _ => {}
    }
}
