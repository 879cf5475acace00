//! The binary's memory allocator, mimalloc, and the settings that make it give memory
//! back after a flood of connections without any `MIMALLOC_*` environment: each worker
//! thread collects its heap as it goes idle, freed memory is purged after a short
//! delay, a purge thread applies due purges while the workers sleep, and the process
//! opts out of transparent huge pages. A setting that cannot be made is logged at
//! start and the process runs on with the allocator's default.

use std::sync::Once;
use std::time::Duration;

/// mimalloc instead of glibc malloc: the proxy path allocates small buffers per
/// request, and glibc's malloc/free showed as ~19% of CPU under load (see
/// load-tests/README.md for the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's purge delay (`mi_option_purge_delay` in mimalloc.h's `mi_option_e`,
/// whose values are its order): how long freed memory stays committed for reuse before
/// it goes back to the system.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// 250 ms. At 0 (purged at once) memory was given back and faulted in again on every
/// request under load: 0.75 of the requests/s (load-tests/README.md); 50 ms and
/// 1000 ms served the same.
const PURGE_DELAY_MS: std::ffi::c_long = 250;
/// How often the purge thread applies the purges that fell due.
const PURGE_TICK: Duration = Duration::from_millis(500);

/// Applies the settings; runs first in `main`, before any other thread exists. An
/// operator's `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ALLOW_THP` overrides the setting it
/// names. Measured with 5,000 silent connections and two workers (README, Known
/// limits): RSS is back within 10% of where it started once they close.
pub fn give_memory_back() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_purge_delay();
    }
    // Transparent huge pages: khugepaged folds the allocator's partly used 2 MiB
    // regions into huge pages after a flood, and RSS grew 4 MiB while idle. Without
    // them, RSS at rest was 10 MiB lower and throughput the same (load-tests/README.md).
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
            eprintln!("tollgate: cannot opt out of transparent huge pages: {e}");
        }
    }
    pingora::server::set_worker_park_hook(on_worker_park);
}

#[allow(unsafe_code)]
fn set_purge_delay() {
    // SAFETY: `mi_option_set` stores a value in mimalloc's option table, read at each
    // purge. It is not thread safe: this runs first in `main`, before any other thread
    // exists. The mimalloc crate offers no safe way to set it.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
}

/// Run by every proxy worker thread as it parks: memory this thread allocated and
/// another freed (a connection moved between workers) is released now, not at this
/// thread's next allocation, which an idle worker may never make. The first call
/// starts the purge thread (here rather than in `main`: a daemonized process forks
/// before its workers start, and a thread does not survive a fork).
fn on_worker_park() {
    static PURGER: Once = Once::new();
    PURGER.call_once(start_purge_thread);
    collect_this_threads_heap();
}

/// Released memory is purged once its delay passed, at a later allocation or collect;
/// idle workers make neither, so this thread collects every `PURGE_TICK` (its own heap
/// is empty: what it does is the process-wide purge of what fell due).
fn start_purge_thread() {
    let spawned = std::thread::Builder::new()
        .name("tollgate-purge".into())
        .spawn(|| loop {
            std::thread::sleep(PURGE_TICK);
            collect_this_threads_heap();
        });
    if let Err(e) = spawned {
        log::warn!(
            "no purge thread ({e}): freed memory goes back to the system only as workers allocate"
        );
    }
}

#[allow(unsafe_code)]
fn collect_this_threads_heap() {
    // SAFETY: `mi_collect(false)` collects the calling thread's own heap (its pending
    // frees and empty pages) and purges what fell due; it takes no pointer and is safe
    // on any thread. The mimalloc crate offers no safe way to call it.
    unsafe { libmimalloc_sys::mi_collect(false) };
}
