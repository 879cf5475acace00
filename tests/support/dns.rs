//! A real DNS server on a loopback UDP port: answers `A` queries from a table the test
//! changes (TTL 1 s), `NXDOMAIN` for names it does not know, and `SERVFAIL` for
//! everything while told to fail.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

const TTL: u32 = 1;

#[derive(Default)]
struct Table {
    records: Mutex<HashMap<String, Vec<Ipv4Addr>>>,
    failing: AtomicBool,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    table: Arc<Table>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    pub async fn start() -> DnsServer {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind dns");
        let addr = socket.local_addr().expect("dns addr");
        let table = Arc::new(Table::default());
        let answering = table.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = answer(&buf[..n], &answering) {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        DnsServer { addr, table, task }
    }

    /// `name` resolves to `ips` from now on (none: `NXDOMAIN`).
    pub fn set(&self, name: &str, ips: &[Ipv4Addr]) {
        let mut records = self.table.records.lock().expect("records");
        match ips {
            [] => records.remove(name),
            _ => records.insert(name.to_owned(), ips.to_vec()),
        };
    }

    /// Answer every query with `SERVFAIL` (or stop doing so).
    pub fn fail(&self, failing: bool) {
        self.table.failing.store(failing, Relaxed);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(query: &[u8], table: &Table) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .add_queries(query.queries().to_vec());
    if table.failing.load(Relaxed) {
        reply.set_response_code(ResponseCode::ServFail);
        return reply.to_vec().ok();
    }
    let records = table.records.lock().expect("records");
    for q in query.queries() {
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let Some(ips) = records.get(&name) else {
            reply.set_response_code(ResponseCode::NXDomain);
            continue;
        };
        if q.query_type() == RecordType::A {
            for ip in ips {
                reply.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(*ip))));
            }
        }
    }
    reply.to_vec().ok()
}
