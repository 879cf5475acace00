//! IP allow and deny lists: `[ip_lists.NAME]` (inline `cidrs` and/or a `file`), used
//! by `[server] deny_from` (every request, before routing) and a route's `allow_from`
//! and `deny_from` (deny wins).
//!
//! The address checked is the client IP (the peer, or the right-most untrusted
//! `X-Forwarded-For` entry behind `trusted_proxies`); an IPv4-mapped IPv6 address
//! counts as its IPv4 address. A refusal is 403, one security-log line (`ip_denied`)
//! and `tollgate_ip_denied_total{route,list}`. Lists are sorted, merged ranges: a
//! lookup is a binary search, whatever the list's length. Files are read when the
//! config is compiled (start and every reload); an unreadable file, a bad entry or an
//! unknown list name is a config problem at its place.

use http::StatusCode;
use ipnet::{IpNet, Ipv4Net};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::location::{Problems, TomlPath};
use crate::config::raw::IpListSection;
use crate::observability::Metrics;
use crate::stage::{Cx, Declared, Flow, Hooks, PolicyEvent, Reply, Stage, StagesBuilder, Step};

/// Bad lines of one file reported at most (the count of the rest follows).
const MAX_REPORTED_LINES: usize = 5;

/// The addresses of one list, as sorted, disjoint, inclusive ranges.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IpList {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpList {
    fn new(nets: &[IpNet]) -> Self {
        let mut list = IpList::default();
        for net in nets {
            match net {
                IpNet::V4(n) => list.v4.push((n.network().into(), n.broadcast().into())),
                IpNet::V6(n) => list.v6.push((n.network().into(), n.broadcast().into())),
            }
        }
        merge(&mut list.v4);
        merge(&mut list.v6);
        list
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => in_ranges(&self.v4, u32::from(a)),
            IpAddr::V6(a) => in_ranges(&self.v6, u128::from(a)),
        }
    }
}

fn merge<T: Ord + Copy + OneMore>(ranges: &mut Vec<(T, T)>) {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1.one_more() => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *ranges = merged;
}

/// `x + 1`, saturating: adjacent ranges merge too.
trait OneMore {
    fn one_more(self) -> Self;
}

impl OneMore for u32 {
    fn one_more(self) -> Self {
        self.saturating_add(1)
    }
}

impl OneMore for u128 {
    fn one_more(self) -> Self {
        self.saturating_add(1)
    }
}

fn in_ranges<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    let after = ranges.partition_point(|&(start, _)| start <= x);
    after > 0 && ranges[after - 1].1 >= x
}

/// The lists of a config by name; `None` for one that had problems (reported once,
/// so references to it are not reported again).
pub type IpLists = HashMap<String, Option<Arc<IpList>>>;

/// Every `[ip_lists]` entry, loaded.
pub fn load_all(sections: &BTreeMap<String, IpListSection>, problems: &mut Problems) -> IpLists {
    let mut lists = HashMap::new();
    for (name, section) in sections {
        let at = TomlPath::root().key("ip_lists").key(name);
        let before = problems.len();
        let nets = load(section, &at, problems);
        let loaded = (problems.len() == before).then(|| Arc::new(IpList::new(&nets)));
        lists.insert(name.clone(), loaded);
    }
    lists
}

fn load(section: &IpListSection, at: &TomlPath, problems: &mut Problems) -> Vec<IpNet> {
    if section.cidrs.is_empty() && section.file.is_none() {
        problems.push((
            at.clone(),
            "needs cidrs = [\"10.0.0.0/8\", ...] or file = \"list.txt\"".into(),
        ));
    }
    let mut nets = Vec::new();
    for (i, entry) in section.cidrs.iter().enumerate() {
        match parse_net(entry) {
            Ok(net) => nets.push(net),
            Err(why) => problems.push((at.key("cidrs").index(i), format!("{entry:?}: {why}"))),
        }
    }
    if let Some(path) = &section.file {
        let at = at.key("file");
        match std::fs::read_to_string(path) {
            Err(e) => problems.push((at, format!("{}: {e}", path.display()))),
            Ok(text) => {
                let mut bad = Vec::new();
                for (n, line) in text.lines().enumerate() {
                    let entry = line.split('#').next().unwrap_or("").trim();
                    match (entry.is_empty(), parse_net(entry)) {
                        (true, _) => {}
                        (false, Ok(net)) => nets.push(net),
                        (false, Err(why)) => bad.push(format!("line {}: {entry:?} ({why})", n + 1)),
                    }
                }
                if !bad.is_empty() {
                    let more = bad.len().saturating_sub(MAX_REPORTED_LINES);
                    bad.truncate(MAX_REPORTED_LINES);
                    let more = match more {
                        0 => String::new(),
                        n => format!(" and {n} more"),
                    };
                    problems.push((at, format!("{}: {}{more}", path.display(), bad.join(", "))));
                }
            }
        }
    }
    nets
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address. A network with host bits set
/// (`10.0.0.1/8`: a typo for a host or for the network?) is refused; an IPv4-mapped
/// one (`::ffff:10.0.0.0/104`) is stored as IPv4, as client addresses are matched.
fn parse_net(text: &str) -> Result<IpNet, String> {
    let net = text
        .parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| "not an IP address or CIDR".to_owned())?;
    if net.addr() != net.network() {
        return Err(format!("host bits set: the network is {}", net.trunc()));
    }
    Ok(match net {
        IpNet::V6(v6) => match (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
            (Some(v4), Some(len)) => Ipv4Net::new(v4, len).map_or(net, IpNet::V4),
            _ => net,
        },
        IpNet::V4(_) => net,
    })
}

/// `deny_from` and `allow_from` of a route (or `[server] deny_from`, with no route).
struct IpAccess {
    /// The metric's `route` label: "" for the server-wide list.
    route: Arc<str>,
    deny: Vec<(Arc<str>, Arc<IpList>)>,
    allow: Vec<Arc<IpList>>,
    /// The `list` label of a refusal for not being in `allow`: its names, joined.
    allow_names: String,
    metrics: Arc<Metrics>,
}

/// Names refer to `[ip_lists]`, each resolved (or reported at `at`'s index).
fn resolve(
    names: &[String],
    at: &TomlPath,
    lists: &IpLists,
    problems: &mut Problems,
) -> Vec<(Arc<str>, Arc<IpList>)> {
    names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| match lists.get(name) {
            Some(Some(list)) => Some((name.as_str().into(), list.clone())),
            Some(None) => None,
            None => {
                problems.push((at.index(i), format!("no ip list named {name:?}")));
                None
            }
        })
        .collect()
}

/// What an install needs besides the names: every list, the metrics, and where the
/// names are (`deny_from` / `allow_from` under `at`).
pub struct Install<'a> {
    pub lists: &'a IpLists,
    pub metrics: &'a Arc<Metrics>,
    pub at: &'a TomlPath,
    /// The route's name, or "" for `[server]`.
    pub route: &'a str,
}

/// Installs the lists' check when any are named.
pub fn install(
    deny_from: &[String],
    allow_from: &[String],
    ctx: &Install<'_>,
    problems: &mut Problems,
    stages: &mut StagesBuilder,
) {
    let deny = resolve(deny_from, &ctx.at.key("deny_from"), ctx.lists, problems);
    let allow = resolve(allow_from, &ctx.at.key("allow_from"), ctx.lists, problems);
    if deny.is_empty() && allow.is_empty() {
        return;
    }
    stages.add(IpAccess {
        route: ctx.route.into(),
        deny,
        allow_names: allow_from.join(","),
        allow: allow.into_iter().map(|(_, list)| list).collect(),
        metrics: ctx.metrics.clone(),
    });
}

impl IpAccess {
    fn refuse(&self, list: &str, rule: &'static str) -> Reply {
        self.metrics.ip_denied(&self.route, list);
        Reply::new(
            StatusCode::FORBIDDEN,
            "requests from this address are not allowed here",
        )
        .logged(PolicyEvent {
            event: "ip_denied",
            fields: vec![("list", list.to_owned()), ("rule", rule.to_owned())],
        })
    }
}

impl Stage for IpAccess {
    fn name(&self) -> &'static str {
        "ip_list"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::REQUEST)
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        self.check(cx.facts().client_ip).into()
    }
}

impl IpAccess {
    fn check(&self, ip: IpAddr) -> Flow {
        if let Some((name, _)) = self.deny.iter().find(|(_, list)| list.contains(ip)) {
            return Err(self.refuse(name, "deny_from"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|list| list.contains(ip)) {
            return Err(self.refuse(&self.allow_names, "allow_from"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> IpList {
        let nets: Vec<IpNet> = entries
            .iter()
            .map(|e| parse_net(e).expect("entry"))
            .collect();
        IpList::new(&nets)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn addresses_networks_and_mapped_addresses_match() {
        let l = list(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]);
        for inside in [
            "10.0.0.0",
            "10.255.255.255",
            "192.0.2.7",
            "2001:db8::1",
            "::ffff:10.1.2.3",
        ] {
            assert!(l.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "11.0.0.0",
            "9.255.255.255",
            "192.0.2.8",
            "2001:db9::",
            "::1",
        ] {
            assert!(!l.contains(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn mapped_entries_are_ipv4_and_host_bits_are_refused() {
        let l = list(&["::ffff:203.0.113.0/120", "::ffff:198.51.100.1"]);
        assert!(l.contains(ip("203.0.113.77")) && l.contains(ip("::ffff:198.51.100.1")));
        assert!(l.v6.is_empty());
        assert_eq!(
            parse_net("10.0.0.1/8").expect_err("host bits"),
            "host bits set: the network is 10.0.0.0/8"
        );
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let l = list(&[
            "10.0.0.0/9",
            "10.128.0.0/9",
            "10.1.0.0/16",
            "0.0.0.0/0",
            "255.255.255.255",
        ]);
        assert_eq!(l.v4, vec![(0, u32::MAX)]);
        let l = list(&["192.0.2.0/25", "192.0.2.128/25", "198.51.100.1"]);
        assert_eq!(l.v4.len(), 2);
        assert!(l.contains(ip("192.0.2.200")) && !l.contains(ip("198.51.100.2")));
    }

    #[test]
    fn a_file_with_comments_loads_and_bad_lines_are_reported_with_their_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("list.txt");
        std::fs::write(
            &path,
            "# blocked\n203.0.113.0/24  # scanners\n\n2001:db8::1\nnonsense\n10.0.0.300\n",
        )
        .expect("write");
        let section = IpListSection {
            cidrs: vec!["192.0.2.1".into(), "10.0.0.0/33".into()],
            file: Some(path),
        };
        let mut problems = Problems::new();
        let nets = load(&section, &TomlPath::root().key("l"), &mut problems);
        assert_eq!(nets.len(), 3);
        let text: Vec<String> = problems.iter().map(|(p, m)| format!("{p}: {m}")).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0] == "l.cidrs[1]: \"10.0.0.0/33\": not an IP address or CIDR",
            "{text:?}"
        );
        assert!(
            text[1].starts_with("l.file: ")
                && text[1].contains("line 5: \"nonsense\" (not an IP address or CIDR), line 6"),
            "{text:?}"
        );
    }
}
