//! A JSON log's lines as RFC 5424 syslog messages to a receiver (a SIEM): the JSON
//! line is the message, after `<PRI>1 TIME HOST tollgate PID MSGID -`. UDP sends a
//! datagram per line; TCP and TLS send over one connection, framed by octet counting
//! (RFC 6587, RFC 5425), connected again at most once a second after a failure. It
//! runs on the log's writer thread, behind the log's bounded queue: a line it cannot
//! send is dropped and counted, never waited for; the receiver going away and coming
//! back is logged once each.

use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use crate::config::raw::{SyslogTarget, Transport};

/// How long a connection (or a TLS handshake, or a send) may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failure, the receiver is not tried again before this.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub struct SyslogSink {
    url: String,
    transport: Transport,
    host: String,
    port: u16,
    tls: Option<SslConnector>,
    /// `<PRI>1 ` and ` HOST tollgate PID MSGID - ` around each message's time.
    pri: String,
    rest: String,
    conn: Option<Conn>,
    retry_at: Option<Instant>,
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl SyslogSink {
    /// A sink for `target`; `msgid` names the log (`security`, `access`) and
    /// `severity` its messages (RFC 5424: 5 notice, 6 informational). Fails on a URL
    /// that is not one or a CA file that does not load; connects on first use.
    pub fn new(target: &SyslogTarget, msgid: &str, severity: u8) -> Result<Self, String> {
        let (transport, host, port) = target.endpoint()?;
        let tls = match transport {
            Transport::Tls => {
                let mut builder = SslConnector::builder(SslMethod::tls_client())
                    .map_err(|e| format!("TLS: {e}"))?;
                if let Some(ca) = &target.ca_file {
                    builder
                        .set_ca_file(ca)
                        .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
                }
                builder.set_verify(SslVerifyMode::PEER);
                Some(builder.build())
            }
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
            rest: format!(" {hostname} tollgate {} {msgid} - ", std::process::id()),
            conn: None,
            retry_at: None,
        })
    }

    /// Sends `line` as one message; an error means it was not sent.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        let time = humantime::format_rfc3339_millis(SystemTime::now());
        let message = format!("{}{time}{}{line}", self.pri, self.rest);
        let sent = match self.connected()? {
            Conn::Udp(socket) => socket.send(message.as_bytes()).map(drop),
            Conn::Tcp(stream) => framed(stream, &message),
            Conn::Tls(stream) => framed(stream, &message),
        };
        if let Err(e) = &sent {
            self.failed(e);
        }
        sent
    }

    /// The connection, made now if there is none and it is time to try.
    fn connected(&mut self) -> io::Result<&mut Conn> {
        if self.conn.is_none() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                return Err(io::ErrorKind::NotConnected.into());
            }
            match self.connect() {
                Ok(conn) => {
                    if self.retry_at.take().is_some() {
                        log::info!("syslog {}: connected again", self.url);
                    }
                    self.conn = Some(conn);
                }
                Err(e) => {
                    self.failed(&e);
                    return Err(e);
                }
            }
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
        stream.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Conn::Tcp(stream)),
            Some(tls) => tls
                .connect(&self.host, stream)
                .map(|s| Conn::Tls(Box::new(s)))
                .map_err(|e| io::Error::other(e.to_string())),
        }
    }

    /// Drops the connection and waits before the next try; the first failure in a
    /// row is logged.
    fn failed(&mut self, e: &io::Error) {
        self.conn = None;
        if self.retry_at.is_none() {
            log::warn!(
                "syslog {}: {e}; lines are dropped (tollgate_log_lines_dropped_total) until it answers",
                self.url
            );
        }
        self.retry_at = Some(Instant::now() + RECONNECT_AFTER);
    }
}

/// RFC 6587 octet counting: `LEN SP MESSAGE`.
fn framed(stream: &mut impl Write, message: &str) -> io::Result<()> {
    let frame = format!("{} {message}", message.len());
    stream.write_all(frame.as_bytes())
}
