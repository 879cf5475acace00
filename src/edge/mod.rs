//! The edge of a request, before any routing decision: request hygiene (Host, URI
//! and header sizes, dot segments), who the client is (trusted proxies and
//! `X-Forwarded-For`), the headers tollgate adds for the upstream, request ids, and
//! what kind of request it is (a CORS preflight, a gRPC call).
//!
//! Pure functions over request headers; nothing here does I/O.

pub mod forwarded;
pub mod grpc;
pub mod hygiene;
pub mod path;
pub mod preflight;
pub mod request_id;
pub mod target;
