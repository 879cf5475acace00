//! WebSocket through tollgate against a real WebSocket echo server (tungstenite):
//! the upgrade, text and binary frames (100 KB), and the close handshake.

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::support::Tollgate;

/// A WebSocket server on a free loopback port that echoes every data frame and
/// answers a close with a close.
async fn echo_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let data = message.is_text() || message.is_binary();
                    if data && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// One exchange through tollgate: text, binary, then the close handshake.
async fn exchange(url: &str) -> Result<(), String> {
    let (mut ws, response) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    if response.status() != 101 {
        return Err(format!("status {}", response.status()));
    }
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sent = [
        Message::text("hello through tollgate"),
        Message::binary(big),
    ];
    for message in sent {
        ws.send(message.clone())
            .await
            .map_err(|e| format!("send: {e}"))?;
        match ws.next().await {
            Some(Ok(echo)) if echo == message => {}
            other => return Err(format!("echo of a {}-byte frame: {other:?}", message.len())),
        }
    }
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    ws.close(Some(close))
        .await
        .map_err(|e| format!("close: {e}"))?;
    match ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) if frame.code == CloseCode::Normal => Ok(()),
        other => Err(format!("close handshake: {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_frames_and_the_close_handshake_pass_through() {
    let echo = echo_server().await;
    let tg = Tollgate::start(&format!(
        "[upstreams.ws]\ntargets = [\"{echo}\"]\n\n[[routes]]\nname = \"ws\"\nupstream = \"ws\"\n"
    ))
    .await;
    let url = format!("ws://127.0.0.1:{}/ws", tg.port);
    // Pingora 0.9 sometimes closes an upgraded connection early on a loaded machine
    // (a known limit, see the README): one exchange in three must go through whole.
    // A regression that breaks WebSockets breaks all three.
    let mut failures = Vec::new();
    for _ in 0..3 {
        match exchange(&url).await {
            Ok(()) => return,
            Err(e) => failures.push(e),
        }
    }
    panic!("no exchange went through: {failures:?}\n{}", tg.log());
}
