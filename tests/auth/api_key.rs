//! API keys: header and query sources, wrong and disabled keys, roles, stripping,
//! `tollgate hash-key`, and auth changes applied by a reload.

use std::io::Write;
use std::process::{Command, Stdio};

use super::assert_unauthorized;
use crate::support::{assert_problem, client, get, send, Origin, Tollgate};

const ACME_KEY: &str = "acme-secret-key-1";
const GONE_KEY: &str = "gone-secret-key-2";

fn digest(key: &str) -> String {
    let mut child = Command::new(crate::support::tollgate::BIN)
        .arg("hash-key")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("hash-key");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(key.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("hash-key output");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

fn config(origin: &Origin, admin_role: &str) -> String {
    format!(
        r#"
[upstreams.app]
targets = [{target}]

[auth.partners]
kind = "api_key"
consumers = [
  {{ id = "acme", key_sha256 = "{acme}", scopes = ["orders:read"], roles = ["{admin_role}"] }},
  {{ id = "gone", key_sha256 = "{gone}", disabled = true }},
]

[auth.by-query]
kind = "api_key"
from = {{ query = "api_key" }}
consumers = [{{ id = "acme", key_sha256 = "{acme}" }}]

[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "app"
auth = ["partners"]
require_scopes = ["orders:read"]

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "app"
auth = ["partners"]
require_roles = ["admin"]

[[routes]]
name = "query"
path_prefix = "/q"
upstream = "app"
auth = ["by-query"]
"#,
        target = origin.target(),
        acme = digest(ACME_KEY),
        gone = digest(GONE_KEY),
    )
}

#[test]
fn hash_key_prints_the_sha256_of_stdin() {
    assert_eq!(
        digest("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_from_header_and_query_with_consumers_and_roles() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin, "admin")).await;
    let key = |path: &str, k: &str| send(client().get(tg.url(path)).header("x-api-key", k));

    let ok = key("/orders/1", ACME_KEY).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let seen = &origin.seen()[0];
    assert_eq!(seen.headers["x-consumer-id"], "acme");
    assert!(
        seen.headers.get("x-api-key").is_none(),
        "the key was forwarded"
    );

    assert_unauthorized(&key("/orders/1", "wrong").await, None);
    assert_unauthorized(&key("/orders/1", GONE_KEY).await, None);
    assert_unauthorized(&get(&tg.url("/orders/1")).await, None);
    assert_eq!(key("/admin", ACME_KEY).await.status, 200);

    let q = get(&tg.url(&format!("/q/items?api_key={ACME_KEY}&page=2"))).await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert_eq!(
        origin.seen().last().expect("seen").path_and_query,
        "/q/items?page=2",
        "the key was left in the query"
    );
    assert_unauthorized(&get(&tg.url("/q/items?api_key=nope")).await, None);

    let events = tg.security_log(3).await;
    let reasons: Vec<_> = events
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        reasons[..3],
        ["unknown_key", "disabled_consumer", "missing_credentials"]
    );
    assert_eq!(events[1]["principal"], "gone");
    let text = tg.security_log_text();
    assert!(
        !text.contains(ACME_KEY) && !text.contains(GONE_KEY) && !text.contains("wrong"),
        "a key was logged: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_changes_apply_on_reload() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin, "admin")).await;
    let admin = || send(client().get(tg.url("/admin")).header("x-api-key", ACME_KEY));
    assert_eq!(admin().await.status, 200);
    assert!(tg.reload(&config(&origin, "user")).await, "{}", tg.log());
    assert_problem(&admin().await, 403);
    let public =
        config(&origin, "admin").replace("auth = [\"partners\"]\nrequire_roles = [\"admin\"]", "");
    assert!(tg.reload(&public).await, "{}", tg.log());
    assert_eq!(
        get(&tg.url("/admin")).await.status,
        200,
        "the route became public"
    );
}
