//! `hsts` of a route: `Strict-Transport-Security` on its responses sent over TLS,
//! never over plain HTTP (RFC 6797 §7.2).

use http::{header, HeaderValue};
use pingora::http::ResponseHeader;
use std::sync::Arc;

use super::{ChainBuilder, RequestView, ResponsePolicy};
use crate::config::raw::HstsSection;

struct Hsts(HeaderValue);

pub fn install(section: Option<&HstsSection>, chain: &mut ChainBuilder) {
    if let Some(h) = section {
        chain.response(Arc::new(Hsts(value(h))));
    }
}

fn value(h: &HstsSection) -> HeaderValue {
    let mut value = format!("max-age={}", h.max_age.as_secs());
    if h.include_subdomains {
        value.push_str("; includeSubDomains");
    }
    if h.preload {
        value.push_str("; preload");
    }
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("max-age=0"))
}

impl ResponsePolicy for Hsts {
    fn on_response(
        &self,
        view: &RequestView<'_>,
        resp: &mut ResponseHeader,
    ) -> pingora::Result<()> {
        if view.secure {
            resp.insert_header(header::STRICT_TRANSPORT_SECURITY, self.0.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn value_lists_the_directives_asked_for() {
        let h = HstsSection {
            max_age: Duration::from_secs(60),
            include_subdomains: true,
            preload: true,
        };
        assert_eq!(value(&h), "max-age=60; includeSubDomains; preload");
    }
}
