//! A JSON log's lines as RFC 5424 syslog messages to a receiver (a SIEM): the JSON
//! line is the message, after `<PRI>1 TIME HOST tollgate PID MSGID -`. UDP sends a
//! datagram per line; TCP and TLS frame messages by octet counting (RFC 6587, RFC
//! 5425) and send each batch of the log's writer in one write, over one connection,
//! made again at most once a second after a failure. It runs on the log's writer
//! thread, behind the log's bounded queue: a line it cannot send is dropped and
//! counted, never waited for (sends time out after 2 s). The receiver going away and
//! coming back is logged once each. UDP is unacknowledged: a datagram sent while the
//! receiver is down counts as sent (the next send learns it is down).

use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use crate::base::pem::{read_certs, trust_store};
use crate::config::raw::{SyslogTarget, Transport};

/// How long a connection (or a TLS handshake, or a send) may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failure, the receiver is not tried again before this.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// A batch is sent when it grows past this, not only at its end.
const BATCH_BYTES: usize = 64 * 1024;

pub struct SyslogSink {
    url: String,
    transport: Transport,
    host: String,
    port: u16,
    tls: Option<SslConnector>,
    /// `<PRI>1 `, and ` HOST tollgate` before the PID (read once the process is what
    /// it will be: after daemonizing), then ` MSGID - `.
    pri: String,
    hostname: String,
    msgid: String,
    rest: Option<String>,
    conn: Option<Conn>,
    retry_at: Option<Instant>,
    /// Whether the last send failed (its recovery is logged).
    down: bool,
    /// TCP and TLS: the frames of the batch not sent yet, and how many.
    batch: Vec<u8>,
    batched: u64,
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl SyslogSink {
    /// A sink for `target`; `msgid` names the log (`security`, `access`) and
    /// `severity` its messages (RFC 5424: 5 notice, 6 informational). Fails on a URL
    /// that is not one or a CA file that does not load; connects on first use. With
    /// `ca_file`, a TLS receiver must chain to it alone, not to the system's roots.
    pub fn new(target: &SyslogTarget, msgid: &str, severity: u8) -> Result<Self, String> {
        let (transport, host, port) = target.endpoint()?;
        let tls = match transport {
            Transport::Tls => Some(tls_connector(target)?),
            _ => None,
        };
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or_else(|| "-".into());
        let pri = u16::from(target.facility.code()) * 8 + u16::from(severity);
        Ok(Self {
            url: target.url.clone(),
            transport,
            host: host.to_owned(),
            port,
            tls,
            pri: format!("<{pri}>1 "),
            hostname,
            msgid: msgid.to_owned(),
            rest: None,
            conn: None,
            retry_at: None,
            down: false,
            batch: Vec::new(),
            batched: 0,
        })
    }

    /// Takes `line` as one message: sent at once (UDP) or added to the batch. The
    /// lines lost (this one, or the batch that could not be sent).
    pub fn send(&mut self, line: &str) -> u64 {
        let time = humantime::format_rfc3339_millis(SystemTime::now());
        let rest = self.rest.get_or_insert_with(|| {
            format!(
                " {} tollgate {} {} - ",
                self.hostname,
                std::process::id(),
                self.msgid
            )
        });
        let message = format!("{}{time}{rest}{line}", self.pri);
        if self.transport == Transport::Udp {
            let sent = self.connected().and_then(|conn| match conn {
                Conn::Udp(socket) => socket.send(message.as_bytes()).map(drop),
                _ => Ok(()),
            });
            return self.outcome(sent, 1);
        }
        let _ = write!(self.batch, "{} {message}", message.len());
        self.batched += 1;
        match self.batch.len() > BATCH_BYTES {
            true => self.flush(),
            false => 0,
        }
    }

    /// Sends the batch (TCP, TLS); the lines lost.
    pub fn flush(&mut self) -> u64 {
        if self.batch.is_empty() {
            return 0;
        }
        let batch = std::mem::take(&mut self.batch);
        let lines = std::mem::take(&mut self.batched);
        let sent = self.connected().and_then(|conn| match conn {
            Conn::Tcp(stream) => stream.write_all(&batch),
            Conn::Tls(stream) => stream.write_all(&batch),
            Conn::Udp(_) => Ok(()),
        });
        self.batch = batch;
        self.batch.clear();
        self.outcome(sent, lines)
    }

    /// `lines` lost when `sent` failed (the connection is then dropped); the
    /// receiver's recovery is logged.
    fn outcome(&mut self, sent: io::Result<()>, lines: u64) -> u64 {
        match sent {
            Ok(()) => {
                if std::mem::take(&mut self.down) {
                    log::info!("syslog {}: the receiver takes lines again", self.url);
                }
                0
            }
            Err(e) => {
                self.failed(&e);
                lines
            }
        }
    }

    /// The connection, made now if there is none and it is time to try.
    fn connected(&mut self) -> io::Result<&mut Conn> {
        if self.conn.is_none() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                return Err(io::ErrorKind::NotConnected.into());
            }
            self.conn = Some(self.connect()?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    fn connect(&self) -> io::Result<Conn> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or(io::ErrorKind::NotFound)?;
        if self.transport == Transport::Udp {
            let any = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(any)?;
            socket.connect(addr)?;
            return Ok(Conn::Udp(socket));
        }
        let stream = TcpStream::connect_timeout(&addr, NETWORK_TIMEOUT)?;
        stream.set_write_timeout(Some(NETWORK_TIMEOUT))?;
        stream.set_read_timeout(Some(NETWORK_TIMEOUT))?;
        match &self.tls {
            None => Ok(Conn::Tcp(stream)),
            Some(tls) => tls
                .connect(&self.host, stream)
                .map(|s| Conn::Tls(Box::new(s)))
                .map_err(|e| io::Error::other(e.to_string())),
        }
    }

    /// Drops the connection and, unless already waiting, waits before the next try;
    /// the first failure in a row is logged.
    fn failed(&mut self, e: &io::Error) {
        self.conn = None;
        if !std::mem::replace(&mut self.down, true) {
            log::warn!(
                "syslog {}: {e}; lines are dropped (tollgate_log_lines_dropped_total) until it takes them again",
                self.url
            );
        }
        let now = Instant::now();
        if self.retry_at.is_none_or(|at| now >= at) {
            self.retry_at = Some(now + RECONNECT_AFTER);
        }
    }
}

/// A TLS client verifying the receiver's name and chain: to `ca_file` alone when
/// given, else to the system's roots.
fn tls_connector(target: &SyslogTarget) -> Result<SslConnector, String> {
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| format!("TLS: {e}"))?;
    if let Some(ca) = &target.ca_file {
        let store = read_certs(ca).and_then(|cas| trust_store(&cas, ca));
        builder.set_cert_store(store.map_err(|e| format!("ca_file {e}"))?);
    }
    builder.set_verify(SslVerifyMode::PEER);
    Ok(builder.build())
}
