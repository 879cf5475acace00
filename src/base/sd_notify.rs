//! systemd's notify protocol (sd_notify(3)) without libsystemd: a state such as
//! `READY=1` or `MAINPID=…` sent as one datagram to `$NOTIFY_SOCKET`, when systemd set
//! one (`Type=notify`); without it, nothing is sent. A failure is logged, never fatal.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` to systemd, if it asked for notifications; whether it was sent.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let sent = addr.and_then(|addr| UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr));
    if let Err(e) = &sent {
        log::warn!("cannot notify systemd at {path}: {e}");
    }
    sent.is_ok()
}
