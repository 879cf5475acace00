//! The memory of request bodies held before proxying (`body::hold`), and the whole
//! body for a route whose stages need it in one piece (validation): its chunks are
//! kept in the request's [`HeldBody`] and handed on together at the end.
//!
//! Memory is bounded twice: each body by the route's request buffer (or `max_body`
//! where the whole body is needed), and all held bodies together by `[server]
//! request_buffer_memory`, counted in one process-wide [`HeldBytes`]. A chunk that
//! would pass it gets 503 where the whole body is needed, and ends the hold elsewhere
//! (the rest of the body streams), so many slow uploads at once cannot exhaust
//! memory. A request gives its bytes back when it ends (Pingora keeps its copy for
//! the upstream until then).

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::base::Reply;

/// Bytes held by every request, process-wide.
#[derive(Clone, Default)]
pub struct HeldBytes(Arc<AtomicU64>);

/// One request's held body and its share of [`HeldBytes`].
#[derive(Default)]
pub struct HeldBody {
    data: BytesMut,
    /// Where this request's bytes are counted, and how many (until the request ends).
    counted: Option<HeldBytes>,
    reserved: u64,
}

impl HeldBody {
    /// Counts `body`'s chunk as held. With `whole`, keeps it too, leaving an empty
    /// one in its place, and at the end of the body hands on all of it. Refuses (503)
    /// a chunk that would hold more than `budget` bytes across all requests.
    pub fn hold(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        whole: bool,
        total: &HeldBytes,
        budget: u64,
    ) -> Result<(), Reply> {
        if let Some(chunk) = body.take() {
            let n = chunk.len() as u64;
            let before = total.0.fetch_add(n, Relaxed);
            let counted = self.counted.get_or_insert_with(|| total.clone());
            if before + n > budget {
                counted.0.fetch_sub(n, Relaxed);
                *body = Some(chunk);
                return Err(Reply::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many request bodies are being held right now; retry shortly",
                )
                .with_header(http::header::RETRY_AFTER, "1"));
            }
            self.reserved += n;
            if !whole {
                *body = Some(chunk);
                return Ok(());
            }
            self.data.extend_from_slice(&chunk);
        }
        if !whole {
            return Ok(());
        }
        *body = Some(match end_of_stream {
            true => std::mem::take(&mut self.data).freeze(),
            false => Bytes::new(),
        });
        Ok(())
    }
}

impl Drop for HeldBody {
    fn drop(&mut self) {
        if let Some(total) = &self.counted {
            total.0.fetch_sub(self.reserved, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_handed_on_whole_and_the_budget_is_shared_and_given_back() {
        let total = HeldBytes::default();
        let (mut a, mut b) = (HeldBody::default(), HeldBody::default());
        let mut chunk = Some(Bytes::from_static(b"abcd"));
        a.hold(&mut chunk, false, true, &total, 10).expect("fits");
        assert_eq!(
            chunk.as_deref(),
            Some(&b""[..]),
            "nothing goes upstream yet"
        );
        let mut chunk = Some(Bytes::from_static(b"efgh"));
        b.hold(&mut chunk, false, true, &total, 10).expect("fits");
        let mut chunk = Some(Bytes::from_static(b"ijk"));
        assert!(
            a.hold(&mut chunk, false, true, &total, 10).is_err(),
            "11 > 10 bytes held"
        );
        drop(b);
        let mut chunk = Some(Bytes::from_static(b"ijk"));
        a.hold(&mut chunk, true, true, &total, 10)
            .expect("fits again");
        assert_eq!(
            chunk.as_deref(),
            Some(&b"abcdijk"[..]),
            "the whole body at its end"
        );
        drop(a);
        assert_eq!(total.0.load(Relaxed), 0);
    }

    #[test]
    fn a_counted_chunk_is_left_in_place() {
        let total = HeldBytes::default();
        let mut a = HeldBody::default();
        let mut chunk = Some(Bytes::from_static(b"abcd"));
        a.hold(&mut chunk, false, false, &total, 10).expect("fits");
        assert_eq!(chunk.as_deref(), Some(&b"abcd"[..]));
        assert_eq!(total.0.load(Relaxed), 4);
        let mut chunk = Some(Bytes::from_static(b"efghijk"));
        assert!(a.hold(&mut chunk, false, false, &total, 10).is_err());
        drop(a);
        assert_eq!(total.0.load(Relaxed), 0);
    }
}
