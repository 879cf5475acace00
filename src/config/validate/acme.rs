//! `[acme]` and the listeners' `tls.acme`: a directory over HTTPS, contacts as
//! `mailto:` URLs,
//! domains that a CA can validate (DNS names, no wildcard, no address), each in one
//! set only, and a plain listener wherever HTTP-01 must be answered.

use std::collections::BTreeMap;

use super::{host_pattern, Problems, TomlPath};
use crate::config::raw::{AcmeSection, ChallengeKind, RawConfig};

pub(super) fn acme(raw: &RawConfig, out: &mut Problems) {
    let root = TomlPath::root();
    if let Some(a) = &raw.acme {
        section(a, &root.key("acme"), out);
    }
    // Each domain, with the set it is ordered in and where that set was named.
    let mut sets: BTreeMap<&str, (Vec<&str>, TomlPath)> = BTreeMap::new();
    for (name, listener) in &raw.listeners {
        let Some(acme) = listener.tls.as_ref().and_then(|t| t.acme.as_ref()) else {
            continue;
        };
        let at = root.key("listeners").key(name).key("tls").key("acme");
        if raw.acme.is_none() {
            out.push((
                at.clone(),
                "needs an [acme] section (the CA's directory, the storage)".into(),
            ));
        }
        if acme.domains.is_empty() {
            out.push((at.key("domains"), "name at least one domain".into()));
        }
        let mut set: Vec<&str> = acme.domains.iter().map(String::as_str).collect();
        set.sort_unstable();
        for (i, domain) in acme.domains.iter().enumerate() {
            let place = at.key("domains").index(i);
            if let Err(why) = orderable(domain) {
                out.push((place, format!("{domain:?}: {why}")));
                continue;
            }
            if acme.domains[..i].contains(domain) {
                out.push((place, format!("{domain:?} is listed twice")));
                continue;
            }
            match sets.get(domain.as_str()) {
                Some((other, first)) if *other != set => out.push((
                    place,
                    format!(
                        "{domain:?} is also ordered with other names at {first}: a name \
                         has one certificate; list the same domains on both listeners"
                    ),
                )),
                _ => {
                    sets.insert(domain, (set.clone(), at.clone()));
                }
            }
        }
        let plain = raw.listeners.values().any(|l| l.tls.is_none());
        if acme.challenge == ChallengeKind::Http01 && !plain {
            out.push((
                at.key("challenge"),
                "http-01 is answered on plain listeners (port 80 for a public CA); add \
                 one, or use \"tls-alpn-01\""
                    .into(),
            ));
        }
    }
}

fn section(a: &AcmeSection, at: &TomlPath, out: &mut Problems) {
    if !a.directory.starts_with("https://") {
        out.push((
            at.key("directory"),
            format!("{:?}: an ACME directory is an https:// URL", a.directory),
        ));
    }
    for (i, contact) in a.contact.iter().enumerate() {
        if !contact.starts_with("mailto:") || contact.len() <= "mailto:".len() {
            out.push((
                at.key("contact").index(i),
                format!("{contact:?}: expected a mailto: URL, e.g. \"mailto:ops@example.com\""),
            ));
        }
    }
    if a.renew_before.is_zero() {
        out.push((at.key("renew_before"), "must be greater than 0".into()));
    }
    if let Some(eab) = &a.eab {
        if eab.kid.is_empty() {
            out.push((at.key("eab").key("kid"), "must not be empty".into()));
        }
        if eab.hmac_env.is_empty() {
            out.push((
                at.key("eab").key("hmac_env"),
                "name an environment variable".into(),
            ));
        }
    }
}

/// A name a CA can validate by HTTP-01 or TLS-ALPN-01: DNS labels, lower case.
fn orderable(domain: &str) -> Result<(), &'static str> {
    if domain.starts_with("*.") {
        return Err("a wildcard needs the DNS-01 challenge, which tollgate does not answer");
    }
    host_pattern(domain)?;
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return Err("an address, not a domain name");
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("write domains in lower case");
    }
    if domain.len() > 253 {
        return Err("longer than a DNS name can be");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_reported, errors};

    const ROUTE: &str = "[[routes]]\nname = \"h\"\nrespond = { status = 200 }\n";

    fn with_listeners(acme: &str, listeners: &str) -> String {
        format!("{acme}\n[listeners.web]\naddr = \"127.0.0.1:1\"\n{listeners}\n{ROUTE}")
    }

    #[test]
    fn a_good_section_and_listeners_pass() {
        let text = with_listeners(
            "[acme]\ndirectory = \"https://ca.example/dir\"\ncontact = [\"mailto:ops@example.com\"]\n\
             storage = \"/tmp/acme\"\nrenew_before = \"20d\"\n",
            "[listeners.a]\naddr = \"127.0.0.1:2\"\ntls = { acme = { domains = [\"a.example\", \"b.example\"] } }\n\
             [listeners.b]\naddr = \"127.0.0.1:3\"\ntls = { acme = { domains = [\"b.example\", \"a.example\"], challenge = \"tls-alpn-01\" } }\n",
        );
        assert_eq!(errors(&text), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_reported_at_its_place() {
        let text = with_listeners(
            "[acme]\ndirectory = \"http://ca.example/dir\"\ncontact = [\"ops@example.com\"]\n\
             storage = \"etcd\"\nrenew_before = \"0s\"\neab = { kid = \"\", hmac_env = \"\" }\n",
            "[listeners.a]\naddr = \"127.0.0.1:2\"\n\
             tls = { acme = { domains = [\"*.example.com\", \"10.0.0.1\", \"A.example\", \"a.example\", \"a.example\"] } }\n\
             [listeners.b]\naddr = \"127.0.0.1:3\"\ntls = { acme = { domains = [\"a.example\", \"c.example\"] } }\n\
             [listeners.c]\naddr = \"127.0.0.1:4\"\ntls = { }\n",
        );
        assert_reported(
            &text,
            &[
            "acme.directory: \"http://ca.example/dir\": an ACME directory is an https:// URL",
            "acme.contact[0]: \"ops@example.com\": expected a mailto: URL",
            "acme.renew_before: must be greater than 0",
            "acme.eab.kid: must not be empty",
            "acme.eab.hmac_env: name an environment variable",
            "listeners.a.tls.acme.domains[0]: \"*.example.com\": a wildcard needs the DNS-01",
            "listeners.a.tls.acme.domains[1]: \"10.0.0.1\": an address",
            "listeners.a.tls.acme.domains[2]: \"A.example\": write domains in lower case",
            "listeners.a.tls.acme.domains[4]: \"a.example\" is listed twice",
            "listeners.b.tls.acme.domains[0]: \"a.example\" is also ordered with other names at listeners.a.tls.acme",
            "listeners.c.tls.certificates: needs at least one",
            ],
        );
    }

    #[test]
    fn acme_listeners_need_the_section_and_http01_a_plain_listener() {
        let text = format!(
            "[listeners.a]\naddr = \"127.0.0.1:2\"\ntls = {{ acme = {{ domains = [\"a.example\"] }} }}\n{ROUTE}"
        );
        assert_reported(
            &text,
            &[
                "listeners.a.tls.acme: needs an [acme] section",
                "listeners.a.tls.acme.challenge: http-01 is answered on plain listeners",
            ],
        );
    }
}
