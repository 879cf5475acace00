//! Security events to a SIEM: `security_log = { syslog = "udp://…" }` (and `tcp://`,
//! `tls://`) against receivers on loopback that parse RFC 5424 strictly (UDP a
//! message per datagram, TCP and TLS framed by octet counting, RFC 6587 / 5425); a
//! receiver that is down costs dropped, counted events, and is used again once up.

use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use serde_json::Value;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::support::certs::{Ca, Leaf};
use crate::support::{client, eventually, free_port, metric, refused_route, Tollgate};

/// One RFC 5424 message, parsed.
#[derive(Debug)]
struct Message {
    pri: u16,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    msg: Value,
}

/// Parses `text` as RFC 5424 (§6) strictly: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID
/// MSGID SD MSG`, each header field printable US-ASCII within its length, the time
/// RFC 3339, no structured data; the message must be one JSON object.
fn parse(text: &str) -> Result<Message, String> {
    let rest = text.strip_prefix('<').ok_or("no PRI")?;
    let (pri, rest) = rest.split_once('>').ok_or("PRI not closed")?;
    let valid_pri = (1..=3).contains(&pri.len())
        && pri.bytes().all(|b| b.is_ascii_digit())
        && (pri == "0" || !pri.starts_with('0'));
    let pri: u16 = pri
        .parse()
        .ok()
        .filter(|p| valid_pri && *p <= 191)
        .ok_or("bad PRI")?;
    let rest = rest.strip_prefix("1 ").ok_or("VERSION is not 1")?;
    let mut fields = rest.splitn(7, ' ');
    let mut field = |name: &str, max: usize| -> Result<String, String> {
        let f = fields.next().ok_or(format!("no {name}"))?;
        let printable = f.bytes().all(|b| (33..=126).contains(&b));
        match !f.is_empty() && f.len() <= max && printable {
            true => Ok(f.to_owned()),
            false => Err(format!("bad {name}: {f:?}")),
        }
    };
    let time = field("TIMESTAMP", 64)?;
    humantime::parse_rfc3339(&time).map_err(|e| format!("TIMESTAMP {time:?}: {e}"))?;
    let (hostname, app) = (field("HOSTNAME", 255)?, field("APP-NAME", 48)?);
    let (procid, msgid) = (field("PROCID", 128)?, field("MSGID", 32)?);
    if field("STRUCTURED-DATA", 1)? != "-" {
        return Err("structured data".into());
    }
    let msg = fields.next().ok_or("no MSG")?;
    let msg: Value = serde_json::from_str(msg).map_err(|e| format!("MSG: {e}: {msg:?}"))?;
    Ok(Message {
        pri,
        hostname,
        app,
        procid,
        msgid,
        msg,
    })
}

/// What a receiver got, as text.
type Got = Arc<Mutex<Vec<String>>>;

async fn udp_receiver(got: Got) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let port = socket.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut buf = vec![0; 65536];
        while let Ok(n) = socket.recv(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            got.lock().expect("got").push(text);
        }
    });
    port
}

/// TCP (or TLS with `leaf`) on `listener`: octet-counted frames, strictly (`LEN SP`,
/// no leading zero).
fn stream_receiver(listener: TcpListener, leaf: Option<&Leaf>, got: Got) {
    let acceptor = leaf.map(|leaf| {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
        builder.set_certificate(&leaf.cert).expect("certificate");
        builder.set_private_key(&leaf.key).expect("key");
        Arc::new(builder.build())
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (got, acceptor) = (got.clone(), acceptor.clone());
            tokio::spawn(async move {
                let stream: Pin<Box<dyn AsyncRead + Send>> = match acceptor {
                    None => Box::pin(tcp),
                    Some(acceptor) => {
                        let ssl = Ssl::new(acceptor.context()).expect("ssl");
                        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).expect("tls");
                        if Pin::new(&mut tls).accept().await.is_err() {
                            return;
                        }
                        Box::pin(tls)
                    }
                };
                read_frames(stream, &got).await;
            });
        }
    });
}

async fn read_frames(mut stream: Pin<Box<dyn AsyncRead + Send>>, got: &Got) {
    loop {
        let mut len = String::new();
        loop {
            let Ok(byte) = stream.read_u8().await else {
                return;
            };
            match byte {
                b' ' => break,
                b'0'..=b'9' if len.len() < 6 => len.push(byte.into()),
                _ => panic!("not octet counting: {len:?} then {byte}"),
            }
        }
        assert!(!len.starts_with('0'), "a frame length {len:?}");
        let mut message = vec![0; len.parse().expect("length")];
        if stream.read_exact(&mut message).await.is_err() {
            return;
        }
        got.lock()
            .expect("got")
            .push(String::from_utf8(message).expect("UTF-8"));
    }
}

/// Sends requests without a key until `got` holds `n` messages (UDP may lose the
/// first ones while nothing is connected yet: a request per try).
async fn refused_until(tg: &Tollgate, got: &Got, n: usize) -> Vec<Message> {
    let c = client();
    let arrived = eventually(Duration::from_secs(10), || async {
        let resp = c.get(tg.url("/")).send().await.expect("request");
        assert_eq!(resp.status(), 401);
        got.lock().expect("got").len() >= n
    })
    .await;
    let texts = got.lock().expect("got").clone();
    assert!(
        arrived,
        "{} of {n} messages: {texts:?}\n{}",
        texts.len(),
        tg.log()
    );
    (texts.iter())
        .map(|t| parse(t).unwrap_or_else(|e| panic!("not RFC 5424 ({e}): {t:?}")))
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn security_events_reach_udp_tcp_and_tls_receivers_as_rfc_5424() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("syslog test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let leaf = ca.server(&["localhost"]);
    for scheme in ["udp", "tcp", "tls"] {
        let got = Got::default();
        let port = match scheme {
            "udp" => udp_receiver(got.clone()).await,
            _ => {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let port = listener.local_addr().expect("addr").port();
                stream_receiver(listener, (scheme == "tls").then_some(&leaf), got.clone());
                port
            }
        };
        let target = match scheme {
            "tls" => format!(
                "{{ url = \"tls://localhost:{port}\", ca_file = \"{}\", facility = \"authpriv\" }}",
                ca_file.display()
            ),
            _ => format!("\"{scheme}://127.0.0.1:{port}\""),
        };
        let server = format!("security_log = {{ syslog = {target} }}\n");
        let tg = Tollgate::start_with_server(&refused_route("/"), &server).await;
        let messages = refused_until(&tg, &got, 3).await;
        let facility = if scheme == "tls" { 10 } else { 16 };
        for m in &messages {
            assert_eq!(m.pri, facility * 8 + 5, "{scheme}: notice: {m:?}");
            assert_eq!((m.app.as_str(), m.msgid.as_str()), ("tollgate", "security"));
            assert_eq!(m.procid, tg.pid().to_string());
            assert_eq!(m.hostname, hostname());
            assert_eq!(m.msg["outcome"], "reject", "{scheme}: {m:?}");
            assert_eq!(m.msg["route"], "private");
        }
        let metrics = tg.metrics().await;
        let dropped = "tollgate_log_lines_dropped_total{log=\"security\"}";
        assert_eq!(metric(&metrics, dropped), 0, "{scheme}: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_receiver_must_chain_to_ca_file_alone_and_have_the_name_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (right, other) = (Ca::new("the receiver's CA"), Ca::new("another CA"));
    let right_file = right.write(dir.path(), "right");
    let other_file = other.write(dir.path(), "other");
    let leaf = right.server(&["localhost"]);
    // Another CA (the system's roots are not asked either), then the right CA but a
    // name the certificate does not have.
    for (host, ca_file) in [("localhost", &other_file), ("127.0.0.1", &right_file)] {
        let got = Got::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        stream_receiver(listener, Some(&leaf), got.clone());
        let server = format!(
            "security_log = {{ syslog = {{ url = \"tls://{host}:{port}\", ca_file = \"{}\" }} }}\n",
            ca_file.display()
        );
        let tg = Tollgate::start_with_server(&refused_route("/"), &server).await;
        let dropped = "tollgate_log_lines_dropped_total{log=\"security\"}";
        let c = client();
        let counted = eventually(Duration::from_secs(10), || async {
            let resp = c.get(tg.url("/")).send().await.expect("request");
            assert_eq!(resp.status(), 401);
            metric(&tg.metrics().await, dropped) >= 3
        })
        .await;
        assert!(counted, "{host}: {}", tg.log());
        assert!(got.lock().expect("got").is_empty(), "{host}: delivered");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_down_costs_counted_events_and_is_used_once_up() {
    let port = free_port();
    let server = format!("security_log = {{ syslog = \"tcp://127.0.0.1:{port}\" }}\n");
    let tg = Tollgate::start_with_server(&refused_route("/"), &server).await;
    let c = client();
    for _ in 0..3 {
        let resp = c.get(tg.url("/")).send().await.expect("request");
        assert_eq!(resp.status(), 401);
    }
    let dropped = "tollgate_log_lines_dropped_total{log=\"security\"}";
    let counted = eventually(Duration::from_secs(5), || async {
        metric(&tg.metrics().await, dropped) >= 3
    })
    .await;
    assert!(counted, "{}", tg.metrics().await);

    let got = Got::default();
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    stream_receiver(listener, None, got.clone());
    let messages = refused_until(&tg, &got, 1).await;
    assert_eq!(messages[0].msg["outcome"], "reject");
    let log = tg.log();
    assert_eq!(log.matches("lines are dropped").count(), 1, "{log}");
    assert!(log.contains("takes lines again"), "{log}");
}

#[test]
fn the_parser_refuses_what_rfc_5424_does_not_allow() {
    let good = "<133>1 2026-12-07T06:13:30.118Z host tollgate 42 security - {}";
    assert!(parse(good).is_ok());
    for bad in [
        "<133> 2026-12-07T06:13:30.118Z host tollgate 42 security - {}",
        "<0133>1 2026-12-07T06:13:30.118Z host tollgate 42 security - {}",
        "<192>1 2026-12-07T06:13:30.118Z host tollgate 42 security - {}",
        "<133>1 yesterday host tollgate 42 security - {}",
        "<133>1 2026-12-07T06:13:30.118Z host tollgate 42 security [x] {}",
        "<133>1 2026-12-07T06:13:30.118Z host tollgate 42 security - not json",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
