//! Server-side request forgery: a URL in a value whose host is a link-local address
//! (cloud metadata lives at 169.254.169.254), this machine or a private network
//! spelled to hide it, or, at paranoia 2, any address of this machine or a private
//! network; and URL schemes that only reach local things (`file:`, `gopher:`,
//! `dict:`, `jar:`, ...). Hosts are read the way lenient resolvers read
//! them: IPv4 in decimal, octal, hex or shortened forms (`2130706433`, `0177.1`,
//! `0x7f.0.0.1`), IPv4-mapped IPv6, and DNS names that answer with the address they
//! spell (`127.0.0.1.nip.io`, `localtest.me`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Schemes that reach local files or speak raw protocols to internal services
/// (`jar:` wraps another URL: `jar:http://…!/`).
const LOCAL_SCHEMES: &[&str] = &[
    "file:/", "gopher:/", "dict:/", "ldap:/", "ldaps:/", "tftp:/", "netdoc:/", "jar:",
];

/// Names that resolve to loopback: `localhost` is how developers write it; the others
/// are public names made to resolve there.
const LOOPBACK_NAME: &str = "localhost";
const LOOPBACK_ALIASES: &[&str] = &["localtest.me", "lvh.me", "vcap.me", "localhost.localdomain"];

/// Public DNS services whose names spell the address they resolve to.
const SPELLING_DOMAINS: &[&str] = &[".nip.io", ".sslip.io", ".xip.io", ".traefik.me"];

/// How far a host reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    Public,
    Private,
    Loopback,
    /// Link-local: where clouds serve instance metadata.
    LinkLocal,
}

/// A host's reach, and whether it was spelled to hide it (an address in decimal,
/// hex, octal or short form, a name that spells an address, IPv4 inside IPv6, the
/// unspecified address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Host {
    reach: Reach,
    disguised: bool,
}

/// Whether `value` (decoded, lower case) holds a URL that reaches inside: at
/// paranoia 1 (`private_networks` false), a link-local address in any spelling, a
/// local or private one spelled to hide it, or a local-only scheme; at 2, any URL
/// to this host or a private network (`http://localhost:8080/callback` is also how
/// native apps register OAuth redirects, RFC 8252).
pub fn reaches_inside(value: &[u8], private_networks: bool) -> bool {
    let text = String::from_utf8_lossy(value);
    if !private_networks && local_scheme(&text) {
        return true;
    }
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(text[from..].as_bytes(), b"://") {
        from += at + 3;
        for (written, port, confusing) in authority_hosts(&text[from..]) {
            // `①②⑦.⓪.⓪.①`: resolvers fold such characters (IDNA) to the address.
            let folded = fold_compatibility(written);
            let mut host = classify(&folded);
            host.disguised |= folded != written;
            // `a\@b`: parsers disagree on which host that is.
            host.disguised |= confusing;
            let service = port.is_some_and(|p| INTERNAL_PORTS.contains(&p));
            let inside = match private_networks {
                true => host.reach >= Reach::Private,
                false => {
                    host.reach == Reach::LinkLocal
                        || (host.reach >= Reach::Private && (host.disguised || service))
                }
            };
            if inside {
                return true;
            }
        }
    }
    false
}

/// Ports of services that speak no HTTP, or keep state an attacker wants (SSH,
/// SMTP, databases, caches, search engines, container and cluster APIs): a URL to
/// one of them on an inside address is a probe.
const INTERNAL_PORTS: &[u16] = &[
    21, 22, 23, 25, 110, 111, 135, 139, 143, 389, 445, 1433, 1521, 2049, 2375, 2376, 2379, 3306,
    5432, 5984, 6379, 8500, 9042, 9200, 9300, 10250, 11211, 27017,
];

/// Whether `text` has one of [`LOCAL_SCHEMES`] at the start of a word: at each colon,
/// the word before it (letters, digits, `+.-`) is the scheme.
fn local_scheme(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b':', bytes).any(|colon| {
        let start = bytes[..colon]
            .iter()
            .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')))
            .map_or(0, |i| i + 1);
        let (scheme, after) = (&text[start..=colon], &text[colon + 1..]);
        LOCAL_SCHEMES.iter().any(|s| {
            s.strip_prefix(scheme)
                .is_some_and(|rest| after.starts_with(rest))
        })
    })
}

/// The hosts (with their ports) of the authority at the start of `rest`: one, or
/// two where a backslash makes parsers disagree (`http://a\\@b/`), then marked
/// confusing.
fn authority_hosts(rest: &str) -> Vec<(&str, Option<u16>, bool)> {
    let end = rest
        .find(|c: char| {
            matches!(
                c,
                '/' | '?' | '#' | ' ' | '"' | '\'' | '<' | '>' | ',' | '!' | ';'
            )
        })
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let confusing = authority.contains('\\');
    let mut hosts = vec![host_port(
        authority.split('\\').next().unwrap_or(authority),
        confusing,
    )];
    if confusing {
        hosts.push(host_port(
            authority.rsplit('\\').next().unwrap_or(authority),
            true,
        ));
    }
    hosts
}

fn host_port(authority: &str, confusing: bool) -> (&str, Option<u16>, bool) {
    // A user name that looks like a host (`http://example.com@127.0.0.1`) is there to
    // mislead whoever reads the URL.
    let (host_port, confusing) = match authority.rsplit_once('@') {
        Some((user, host)) => (host, confusing || user.contains('.')),
        None => (authority, confusing),
    };
    if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
        return (
            host,
            after.strip_prefix(':').and_then(|p| p.parse().ok()),
            confusing,
        );
    }
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, ""));
    (host, port.parse().ok(), confusing)
}

fn classify(host: &str) -> Host {
    let host = host.trim_end_matches('.');
    let plain = |reach| Host {
        reach,
        disguised: false,
    };
    let disguised = |reach| Host {
        reach,
        disguised: true,
    };
    if host == LOOPBACK_NAME || host.ends_with(".localhost") {
        return plain(Reach::Loopback);
    }
    if LOOPBACK_ALIASES
        .iter()
        .any(|n| host == *n || host.ends_with(&format!(".{n}")))
    {
        return disguised(Reach::Loopback);
    }
    if let Some(spelled) = SPELLING_DOMAINS.iter().find_map(|d| host.strip_suffix(d)) {
        // `a.b.c.d.nip.io`, `name.a.b.c.d.nip.io`, `a-b-c-d.nip.io`.
        let dotted = spelled.replace('-', ".");
        let parts: Vec<&str> = dotted.rsplit('.').take(4).collect();
        let address: Vec<&str> = parts.into_iter().rev().collect();
        return match address.join(".").parse::<Ipv4Addr>() {
            Ok(ip) => disguised(reach_of(IpAddr::V4(ip))),
            Err(_) => plain(Reach::Public),
        };
    }
    let v6 = host.split('%').next().unwrap_or(host);
    if let Ok(ip) = v6.parse::<Ipv6Addr>() {
        return Host {
            reach: reach_of(IpAddr::V6(ip)),
            disguised: ip.to_ipv4_mapped().is_some() || ip.is_unspecified(),
        };
    }
    match lenient_ipv4(host) {
        Some(ip) => Host {
            reach: reach_of(IpAddr::V4(ip)),
            disguised: host.parse::<Ipv4Addr>().is_err() || ip.is_unspecified(),
        },
        None => plain(Reach::Public),
    }
}

/// `host` with the compatibility characters IDNA folds to ASCII digits, letters and
/// dots as those (circled and fullwidth digits and letters, ideographic full stops).
fn fold_compatibility(host: &str) -> String {
    host.chars()
        .map(|c| {
            let code = u32::from(c);
            let folded = match code {
                0x2460..=0x2468 => Some(b'1' + (code - 0x2460) as u8),
                0x24EA | 0x24FF | 0xFF10 => Some(b'0'),
                0x2776..=0x277E => Some(b'1' + (code - 0x2776) as u8),
                0x2780..=0x2788 => Some(b'1' + (code - 0x2780) as u8),
                0x278A..=0x2792 => Some(b'1' + (code - 0x278A) as u8),
                0xFF11..=0xFF19 => Some(b'1' + (code - 0xFF11) as u8),
                0x24B6..=0x24CF => Some(b'a' + (code - 0x24B6) as u8),
                0x24D0..=0x24E9 => Some(b'a' + (code - 0x24D0) as u8),
                0xFF21..=0xFF3A => Some(b'a' + (code - 0xFF21) as u8),
                0xFF41..=0xFF5A => Some(b'a' + (code - 0xFF41) as u8),
                0x3002 | 0xFF0E | 0xFF61 => Some(b'.'),
                _ => None,
            };
            folded.map_or(c, char::from)
        })
        .collect()
}

/// `inet_aton`'s reading: one to four parts, each decimal, octal (leading 0) or hex
/// (`0x`), the last filling the remaining bytes.
fn lenient_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts.iter().map(|p| number(p)).collect::<Option<_>>()?;
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|&n| n > 255) {
        return None;
    }
    let room = 8 * (4 - leading.len() as u32);
    if room < 64 && *last >= 1u64 << room {
        return None;
    }
    let mut value: u64 = 0;
    for (i, &n) in leading.iter().enumerate() {
        value |= n << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from((value | last) as u32))
}

fn number(part: &str) -> Option<u64> {
    if part.is_empty() || part.len() > 12 {
        return None;
    }
    if let Some(hex) = part.strip_prefix("0x") {
        return match hex.is_empty() {
            true => Some(0),
            false => u64::from_str_radix(hex, 16).ok(),
        };
    }
    if part.len() > 1 && part.starts_with('0') {
        return u64::from_str_radix(&part[1..], 8).ok();
    }
    part.parse().ok()
}

fn reach_of(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_link_local() {
                Reach::LinkLocal
            } else if v4.is_loopback() || v4.is_unspecified() || a == 0 {
                Reach::Loopback
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Reach::Private
            } else {
                Reach::Public
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return reach_of(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if first & 0xffc0 == 0xfe80 {
                Reach::LinkLocal
            } else if v6.is_loopback() || v6.is_unspecified() {
                Reach::Loopback
            } else if first & 0xfe00 == 0xfc00 {
                Reach::Private
            } else {
                Reach::Public
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(v: &str) -> bool {
        reaches_inside(v.as_bytes(), false)
    }

    #[test]
    fn link_local_anywhere_and_inside_addresses_spelled_to_hide() {
        for v in [
            "http://169.254.169.254/latest",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::ffff:169.254.169.254]/latest",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254.nip.io/",
            "http://app.127-0-0-1.sslip.io/",
            "http://0/",
            "http://0.0.0.0:6379/",
            "go to http://api.localtest.me now",
            "file:///etc/passwd",
            "gopher://10.0.0.1:6379/_flushall",
            "jar:http://127.0.0.1!/",
            "http://[fe80::1]/",
            "http://127.0.0.1:22",
            "http://localhost:6379/",
            "http://127.1.1.1:80\\@127.2.2.2:80/",
            "http://example.com@127.0.0.1",
            "http://①②⑦.⓪.⓪.①/",
        ] {
            assert!(local(v), "{v}");
        }
    }

    #[test]
    fn plain_loopback_and_private_networks_at_paranoia_2() {
        for v in [
            "http://localhost:8080/callback",
            "http://127.0.0.1:54321/cb",
            "https://user:pw@localhost./x",
            "http://[::1]:8080/",
            "http://10.0.0.5/hook",
        ] {
            assert!(!local(v), "{v}");
            assert!(reaches_inside(v.as_bytes(), true), "{v}");
        }
        assert!(reaches_inside(b"http://[fd00::1]/", true));
        assert!(reaches_inside(b"http://100.64.1.1/", true));
    }

    #[test]
    fn public_hosts_pass() {
        for v in [
            "https://hooks.example.com/services/t0",
            "https://client.example.com/cb",
            "http://1.2.3.4/",
            "mailto:x@y.z",
            "see 127.0.0.1 in the docs",
            "http://8.8.8.8.nip.io/",
            "the file: report.pdf",
            "a profile:/x",
        ] {
            assert!(!reaches_inside(v.as_bytes(), true), "{v}");
        }
    }

    #[test]
    fn lenient_ipv4_reads_as_inet_aton() {
        assert_eq!(
            lenient_ipv4("0xa9fea9fe"),
            Some(Ipv4Addr::new(169, 254, 169, 254))
        );
        assert_eq!(
            lenient_ipv4("169.16689662"),
            Some(Ipv4Addr::new(169, 254, 169, 254))
        );
        assert_eq!(lenient_ipv4("256.1.1.1"), None);
        assert_eq!(lenient_ipv4("4294967296"), None);
        assert_eq!(lenient_ipv4("example"), None);
    }
}
