//! gRPC through tollgate, with a real gRPC server and client (Python grpcio): an h2c
//! listener in front of an h2c upstream (`protocol = "h2c"`), unary and
//! server-streaming calls, trailers and error statuses passed through, tollgate's own
//! refusals as gRPC statuses, and the call's `grpc-timeout` as its deadline.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

use crate::support::certs::Ca;
use crate::support::grpc::{call, GrpcServer};
use crate::support::{free_port, Tollgate};

const KEY: &str = "grpc-test-key-1";

fn config(server: &GrpcServer, h2c_port: u16) -> String {
    let digest = hex::encode(Sha256::digest(KEY));
    format!(
        r#"
[listeners.h2c]
addr = "127.0.0.1:{h2c_port}"
h2c = true

[upstreams.grpc]
targets = [{target}]
protocol = "h2c"

[auth.keys]
kind = "api_key"
consumers = [{{ id = "tester", key_sha256 = "{digest}" }}]

[[routes]]
name = "locked"
path_prefix = "/test.Echo/Stream"
upstream = "grpc"
auth = ["keys"]

[[routes]]
name = "echo"
path_prefix = "/test.Echo/"
upstream = "grpc"
"#,
        target = server.target()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_pass_through_an_h2c_upstream() {
    let server = GrpcServer::start();
    let h2c_port = free_port();
    let tg = Tollgate::start(&config(&server, h2c_port)).await;
    crate::tls::wait_listening(&tg, h2c_port).await;
    let target = format!("127.0.0.1:{h2c_port}");
    let direct = format!("127.0.0.1:{}", server.port);
    tokio::task::block_in_place(|| {
        // Unary: the reply and the trailers, as the server sent them.
        let unary = call(&target, "unary", "hello", &[]);
        assert_eq!(unary["code"], "OK", "{unary}");
        assert_eq!(unary["reply"], "echo:hello");
        assert_eq!(unary["trailers"]["x-trailer"], "t1", "{unary}");
        // The server's own error status and message.
        let failed = call(&target, "unary", "fail", &[]);
        assert_eq!(failed["code"], "NOT_FOUND", "{failed}");
        assert_eq!(failed["details"], "no such thing");
        // Server streaming, behind an API key.
        let streamed = call(&target, "stream", "3", &["--key", KEY]);
        assert_eq!(
            streamed["reply"],
            serde_json::json!(["item0", "item1", "item2"]),
            "{streamed}"
        );
        assert_eq!(
            call(&direct, "stream", "3", &[])["reply"],
            streamed["reply"]
        );
        // tollgate's own refusal is a gRPC status the client understands.
        let refused = call(&target, "stream", "3", &[]);
        assert_eq!(refused["code"], "UNAUTHENTICATED", "{refused}");
        assert!(
            refused["details"].as_str().is_some_and(|d| !d.is_empty()),
            "{refused}"
        );
    });
    // The access log (and jails, metrics) count the refusal as what it is: 401.
    let lines = tg.access_log(4).await;
    let refusal = lines
        .iter()
        .rev()
        .find(|l| l["path"] == "/test.Echo/Stream");
    assert_eq!(
        refusal.map(|l| l["status"].clone()),
        Some(serde_json::json!(401)),
        "{lines:?}"
    );
    // Over HTTP/1.1 the gRPC content type is no gRPC call: a problem document.
    let h1 = crate::support::send(
        crate::support::client()
            .post(tg.url("/test.Echo/Stream"))
            .header("content-type", "application/grpc"),
    )
    .await;
    crate::support::assert_problem(&h1, 401);
}

/// A gRPC message frame: uncompressed, `payload`.
fn frame(payload: &[u8]) -> Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_calls_grpc_timeout_is_its_deadline() {
    let server = GrpcServer::start();
    let h2c_port = free_port();
    let tg = Tollgate::start(&config(&server, h2c_port)).await;
    crate::tls::wait_listening(&tg, h2c_port).await;
    // A raw HTTP/2 client, which (unlike grpcio) does not enforce the deadline itself.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", h2c_port))
        .await
        .expect("connect");
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://127.0.0.1:{h2c_port}/test.Echo/Unary"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "500m")
        .body(())
        .expect("request");
    let started = Instant::now();
    let (response, mut body) = client.send_request(request, false).expect("send");
    body.send_data(frame(b"slow"), true).expect("body");
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("an answer within 5 s")
        .expect("response");
    let took = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["grpc-status"],
        "4",
        "{:?}",
        response.headers()
    );
    assert!(
        took < Duration::from_millis(1800),
        "answered after {took:?}: the server takes 2 s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_pass_through_a_tls_listener() {
    let server = GrpcServer::start();
    let ca = Ca::new("grpc test ca");
    let tls_port = free_port();
    let body = format!(
        "[listeners.secure]\naddr = \"127.0.0.1:{tls_port}\"\n[listeners.secure.tls]\n\
         certificates = [{{ cert = \"$DIR/grpc.pem\", key = \"$DIR/grpc.key\" }}]\nhttp2 = true\n{}",
        config(&server, free_port())
    );
    let tg = Tollgate::start_full(&body, "", &[], |dir| {
        ca.server(&["grpc.test"]).write(dir, "grpc");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("ca");
    })
    .await;
    crate::tls::wait_listening(&tg, tls_port).await;
    let ca_file = tg.path("ca.pem");
    let ca_file = ca_file.to_str().expect("path");
    let target = format!("127.0.0.1:{tls_port}");
    tokio::task::block_in_place(|| {
        let tls = ["--tls", ca_file, "grpc.test"];
        let unary = call(&target, "unary", "hello", &tls);
        assert_eq!(unary["code"], "OK", "{unary}");
        assert_eq!(unary["reply"], "echo:hello");
        assert_eq!(unary["trailers"]["x-trailer"], "t1", "{unary}");
        let refused = call(&target, "stream", "2", &tls);
        assert_eq!(refused["code"], "UNAUTHENTICATED", "{refused}");
    });
}
