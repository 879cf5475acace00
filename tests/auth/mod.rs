//! Authentication and authorization against the real binary, with keys generated in
//! the test and real signed tokens.

mod api_key;
mod jwks;
mod jwt;

use crate::support::{client, send, Reply};

/// GET `url` with `Authorization: Bearer token`.
pub async fn bearer(url: &str, token: &str) -> Reply {
    send(client().get(url).bearer_auth(token)).await
}

/// Asserts a 401 whose challenge and security-log reason match.
pub fn assert_unauthorized(reply: &Reply, error: Option<&str>) {
    crate::support::assert_problem(reply, 401);
    let challenge = reply.header("www-authenticate");
    match error {
        Some(e) => assert!(challenge.contains(&format!("error=\"{e}\"")), "{challenge}"),
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
}
