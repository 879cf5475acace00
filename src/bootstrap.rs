//! Builds and runs the Pingora server from a loaded config: `ServerConf` from
//! `[server]` (no Pingora YAML), one proxy service per listener kind (each
//! connection behind the `connection` guard, one accept per turn, 2 KiB read
//! buffers), the admin service, and one service for the background chores
//! (lifecycle, health checks, DNS and JWKS refreshes, sweeps, jails, log writers,
//! SIGHUP reload, SIGUSR2 upgrade).
//!
//! Everything that can fail (config, keys, log files) fails here, before Pingora
//! daemonizes, so `tollgate run` exits non-zero with a clear message.

use anyhow::Context;
use arc_swap::ArcSwap;
use pingora::apps::HttpServerOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::prelude::Opt;
use pingora::proxy::http_proxy;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::admin;
use crate::auth::jwks::jwks_refresher;
use crate::base::background;
use crate::base::chores::Chores;
use crate::base::clock::Clock;
use crate::base::lifecycle::{Lifecycle, LifecycleWatch};
use crate::config::{raw::ServerSection, read_file, LoadedConfig};
use crate::connection::{AcceptFilter, ConnectionGuard, CurrentLimits, PerIp, ProxyListeners};
use crate::fleet::follow::FollowCluster;
use crate::jail::keeper;
use crate::observability::process_log::LogOutput;
use crate::observability::{
    AccessLog, JsonLines, LogKind, Metrics, Reopen, ReopenOnSignal, SecurityLog,
};
use crate::proxy::{Gateway, GatewayParts, ListenerMap};
use crate::ratelimit::sweeper;
use crate::state::reload::{ReloadOnHangup, Reloader};
use crate::state::{compile::compile, Retained, SharedSnapshot};
use crate::tls::{acceptor_settings, Handshakes};
use crate::upgrade::UpgradeOnSignal;
use crate::upstream::{dns_refreshes, health_checks};

/// `tollgate run` flags that map onto Pingora's own options.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags {
    pub daemon: bool,
    pub upgrade: bool,
}

/// Loads `config_path` and serves until told to stop. Returns only on start-up errors.
pub fn run(
    config_path: &Path,
    flags: RunFlags,
    metrics: Arc<Metrics>,
    log_output: LogOutput,
) -> anyhow::Result<()> {
    build(config_path, flags, metrics, log_output)?.run_forever()
}

/// The server, ready to run. What was read to build it (the file's text, the raw
/// config) is dropped when this returns, not held for as long as the server runs.
/// With the reloader and the upgrade signal keeping only the sections they read,
/// and the config shown by `/config` kept as text, 10,000 routes cost 14.0 MiB of
/// RSS over 10 routes instead of 45.5 (the systemd unit's allocator settings).
fn build(
    config_path: &Path,
    flags: RunFlags,
    metrics: Arc<Metrics>,
    log_output: LogOutput,
) -> anyhow::Result<Server> {
    // Absolute, because daemon mode changes the working directory to `/`.
    let config_path = std::fs::canonicalize(config_path)
        .with_context(|| format!("cannot open config {}", config_path.display()))?;
    let mut loaded = read_file(&config_path)?;
    refuse_errors(&loaded, &metrics)?;
    // With `[fleet]`: the cluster's document with this host's keys, from etcd or the cache.
    let prepared = crate::fleet::node::prepare(&config_path, &loaded, &metrics)?;
    if prepared.follow.is_some() {
        loaded = read_file(&prepared.path)?;
        loaded.origin = prepared.origin.clone();
        refuse_errors(&loaded, &metrics)?;
    }
    // The local file, which an upgrade starts the new process with; on a fleet node
    // a reload reads the cache's current revision.
    let local_path = config_path;
    let config_path = prepared.path;
    let raw = &loaded.raw;
    let log_files = Reopen::default();
    log_output.configure(raw.server.log_format, &raw.server.process_log, &log_files)?;
    let (access_lines, access_writer) = JsonLines::open(
        LogKind::Access,
        &raw.server.access_log,
        &log_files,
        &metrics,
    )?;
    let (security_lines, security_writer) = JsonLines::open(
        LogKind::Security,
        &raw.server.security_log,
        &log_files,
        &metrics,
    )?;
    let security_log = SecurityLog::new(security_lines, metrics.clone());
    let retained = Arc::new(Retained::new(
        metrics,
        security_log.clone(),
        Clock::system(),
    ));
    let snapshot = Arc::new(compile(&loaded, &retained)?);
    let LoadedConfig { raw, .. } = loaded;
    for warning in &snapshot.warnings {
        log::warn!("{warning}");
    }
    let tls_slots: HashMap<String, _> = snapshot
        .tls
        .iter()
        .map(|(name, tls)| (name.clone(), retained.tls.slot(name, tls.clone())))
        .collect();
    retained.commit(&snapshot);
    let shared = Arc::new(ArcSwap::new(snapshot));

    let mut server = Server::new_with_opt_and_conf(
        Opt {
            upgrade: flags.upgrade,
            daemon: flags.daemon,
            ..Opt::default()
        },
        server_conf(&raw.server, flags.daemon),
    );
    server.bootstrap();

    let lifecycle = Arc::new(Lifecycle::default());
    let gateway = Gateway::new(
        shared.clone(),
        GatewayParts {
            lifecycle: lifecycle.clone(),
            listeners: Arc::new(ListenerMap::new(
                raw.listeners.iter().map(|(n, l)| (l.addr, n.clone())),
            )),
            access_log: AccessLog::new(access_lines),
            security_log: security_log.clone(),
            metrics: retained.metrics.clone(),
            clock: retained.clock.clone(),
        },
    );
    let per_ip = Arc::new(PerIp::default());
    // Pingora sets h2c per service, so listeners are grouped by it.
    for h2c in [false, true] {
        let listeners: Vec<_> = raw.listeners.iter().filter(|(_, l)| l.h2c == h2c).collect();
        if listeners.is_empty() {
            continue;
        }
        let name = if h2c { "tollgate h2c" } else { "tollgate" };
        let mut proxy = http_proxy(&server.configuration, gateway.clone());
        let mut options = HttpServerOptions::default();
        options.h2c = h2c;
        // An HTTP/2 connection without a request in flight is idle.
        options.h2_idle_timeout = Some(raw.server.keepalive_timeout);
        // Read once at start: a reload does not change it (HttpServerOptions is fixed
        // per service).
        options.h2_first_stream_timeout = Some(raw.server.header_timeout);
        proxy.server_options = Some(options);
        let metrics = &retained.metrics;
        let proxied = |tls: bool| ProxyListeners {
            bound: (listeners.iter())
                .filter(|(_, l)| l.proxy_protocol && l.tls.is_some() == tls)
                .map(|(_, l)| l.addr)
                .collect(),
            limits: client_limits(&shared),
            refused: metrics.connections_refused("proxy_protocol"),
        };
        let guard = ConnectionGuard::new(
            proxy,
            client_limits(&shared),
            lifecycle.clone(),
            h2c,
            per_ip.clone(),
            Arc::new(proxied(false)),
            metrics,
        );
        let mut service = Service::new(name.to_owned(), guard);
        service.set_connection_filter(Arc::new(AcceptFilter {
            per_ip: per_ip.clone(),
            limits: client_limits(&shared),
            refused_per_ip: metrics.connections_refused("max_connections_per_ip"),
        }));
        let before_tls = proxied(true);
        if !before_tls.bound.is_empty() {
            service
                .endpoints()
                .set_pre_tls_callback(Arc::new(before_tls));
        }
        for (name, listener) in listeners {
            let endpoint =
                ListenerConfig::tcp(listener.addr.to_string()).l4_buffer(client_buffers());
            let Some(section) = &listener.tls else {
                service.add_listener(endpoint);
                continue;
            };
            // A TLS listener never falls back to plain TCP.
            let slot = tls_slots
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("listeners.{name}.tls: certificates not loaded"))?;
            let handshakes = Handshakes {
                listener: name.clone(),
                current: slot.clone(),
                acme: retained.acme.certs.clone(),
                metrics: retained.metrics.clone(),
            };
            let settings = acceptor_settings(section, handshakes)
                .map_err(|e| anyhow::anyhow!("listeners.{name}.tls: {e}"))?;
            service.add_listener(endpoint.tls(settings));
        }
        server.add_service(service);
    }
    let reloader = Arc::new(Reloader::new(
        config_path.clone(),
        prepared.origin,
        &raw,
        shared.clone(),
        retained.clone(),
        log_files.clone(),
    ));
    let mut chores = Chores::default();
    chores.add(LifecycleWatch {
        lifecycle: lifecycle.clone(),
        listeners: raw.listeners.values().map(|l| l.addr).collect(),
    });
    if let Some(admin) = &raw.admin {
        let parts = admin::AdminParts {
            lifecycle,
            shared: shared.clone(),
            metrics: retained.metrics.clone(),
            targets: retained.targets.clone(),
            jails: retained.jails.clone(),
            security_log: security_log.clone(),
            reloader: reloader.clone(),
            clock: retained.clock.clone(),
            stats: retained.stats.clone(),
            detection: retained.anomaly.clone(),
        };
        server.add_service(admin::service(admin, parts));
    }
    chores.add(health_checks(retained.targets.clone()));
    chores.add(background::chores(retained.background.clone()));
    chores.add(dns_refreshes(
        retained.targets.clone(),
        retained.metrics.clone(),
    ));
    chores.add(jwks_refresher(retained.jwks.clone()));
    chores.add(sweeper(
        retained.buckets.clone(),
        retained.metrics.clone(),
        retained.clock.clone(),
    ));
    chores.add(keeper(
        retained.jails.clone(),
        retained.metrics.clone(),
        security_log,
        retained.clock.clone(),
    ));
    for writer in [access_writer, security_writer].into_iter().flatten() {
        chores.add(writer);
    }
    if let Some(follow) = prepared.follow {
        let connected = retained.metrics.gauge(
            "fleet_connected",
            "1 while the node watches its cluster's config in etcd, 0 while it cannot reach etcd",
        )?;
        chores.add(FollowCluster::new(follow, reloader.clone(), connected));
    }
    chores.add(ReloadOnHangup(reloader));
    chores.add(ReopenOnSignal(log_files));
    chores.add(UpgradeOnSignal {
        config: local_path,
        server: raw.server.clone(),
    });
    server.add_service(background_service("chores", chores));
    catch_drain_signal()?;
    if !flags.daemon {
        // Pingora writes the pid file only when daemonizing; `tollgate reload` needs it.
        write_pid_file(&raw.server.pid_file)?;
    }
    log::info!(
        "tollgate starting with {} (listeners: {})",
        config_path.display(),
        raw.listeners
            .iter()
            .map(|(n, l)| format!("{n}={}", l.addr))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(server)
}

/// The client connection limits of the snapshot current when they are read.
fn client_limits(shared: &SharedSnapshot) -> CurrentLimits {
    let shared = shared.clone();
    Box::new(move || shared.load().client_limits.clone())
}

fn server_conf(s: &ServerSection, daemon: bool) -> ServerConf {
    let workers = s
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    ServerConf {
        daemon,
        pid_file: s.pid_file.display().to_string(),
        upgrade_sock: s.upgrade_socket.display().to_string(),
        threads: workers,
        grace_period_seconds: Some(s.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(s.shutdown_timeout.as_secs()),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool,
        ..ServerConf::default()
    }
}

/// SIGUSR1 begins a drain (`tollgate stop` with a `drain_delay`), but its default
/// action ends the process, and the lifecycle service listens for it only once
/// Pingora runs. Listening once here installs tokio's handler for the rest of the
/// process's life, so a SIGUSR1 sent as soon as the pid file exists is harmless.
fn catch_drain_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start a runtime to catch SIGUSR1")?;
    // The handler stays installed when this listener is dropped.
    let _listener = runtime
        .block_on(async { signal(SignalKind::user_defined1()) })
        .context("cannot catch SIGUSR1")?;
    Ok(())
}

/// Every error of a file that does not validate at once, as `tollgate check` shows
/// them, before anything opens: compiling a file with errors always fails.
fn refuse_errors(loaded: &LoadedConfig, metrics: &Arc<Metrics>) -> anyhow::Result<()> {
    if !loaded.is_valid() {
        compile(loaded, &Retained::for_check(metrics.clone()))?;
    }
    Ok(())
}

fn write_pid_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("pid file directory {}", dir.display()))?;
    }
    std::fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write pid file {}", path.display()))
}

/// The buffers under every client connection, for its whole life (idle keep-alive
/// connections too). Pingora's default read buffer is 64 KiB, which mimalloc hands
/// out touched: 60 KiB of every idle connection's 90 (`load-tests/idle.sh`).
/// OpenSSL reads a record's 5-byte header, then its body: a buffer that holds the
/// whole record saves a read. 2 KiB holds a request head with a JWT in one record;
/// with 1 KiB such a request took 3 reads instead of 2, for 1.1 KiB less per idle
/// connection (9.4 against 10.5), and 4 KiB held 2.1 KiB more (12.6). Unbuffered
/// (0) costs TLS two reads a record (7.2 system calls a request instead of 5.2).
/// Throughput is the same with 64 KiB, 4 KiB and none (wrk -c32, HTTP and HTTPS).
const CLIENT_READ_BUFFER: usize = 2 * 1024;
/// Pingora's default: one TCP segment.
const CLIENT_WRITE_BUFFER: usize = 1460;

fn client_buffers() -> L4BufferSettings {
    L4BufferSettings::new(CLIENT_READ_BUFFER, CLIENT_WRITE_BUFFER)
}
