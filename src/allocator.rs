//! The binary's memory allocator, mimalloc, and the settings that make it give memory
//! back after a flood of connections without any `MIMALLOC_*` environment: freed
//! memory is purged at once, each worker thread collects its heap as it goes idle,
//! and the process opts out of transparent huge pages. A setting that cannot be made
//! is logged at start and the process runs on with the allocator's default.

/// mimalloc instead of glibc malloc: the proxy path allocates small buffers per
/// request, and glibc's malloc/free showed as ~19% of CPU under load (see
/// load-tests/README.md for the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's purge delay (`mi_option_purge_delay` in mimalloc.h's `mi_option_e`,
/// whose values are its order), set to 0: memory freed is given back to the system at
/// once rather than after 10 s (100 s for arena memory).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies the settings; runs first in `main`, before any other thread exists. An
/// operator's `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ALLOW_THP` overrides the setting it
/// names. Measured with 5,000 silent connections and two workers (README, Known
/// limits): RSS is back within 10% of where it started once they close.
pub fn give_memory_back() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_purge_delay_to_zero();
    }
    // Transparent huge pages: khugepaged folds the allocator's partly used 2 MiB
    // regions into huge pages after a flood, and RSS grew 4 MiB while idle. Without
    // them, RSS at rest was 10 MiB lower and throughput the same (load-tests/README.md).
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
            eprintln!("tollgate: cannot opt out of transparent huge pages: {e}");
        }
    }
    pingora::server::set_worker_park_hook(collect_this_threads_heap);
}

#[allow(unsafe_code)]
fn set_purge_delay_to_zero() {
    // SAFETY: `mi_option_set` stores a value in mimalloc's option table, read at each
    // purge. It is not thread safe: this runs first in `main`, before any other thread
    // exists. The mimalloc crate offers no safe way to set it.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
}

/// Run by every proxy worker thread as it parks: memory this thread allocated and
/// another freed (a connection moved between workers) goes back to the system now,
/// not at this thread's next allocation, which an idle worker may never make.
#[allow(unsafe_code)]
fn collect_this_threads_heap() {
    // SAFETY: `mi_collect(false)` collects the calling thread's own heap (its pending
    // frees and empty pages); it takes no pointer and is safe on any thread that has
    // one. The mimalloc crate offers no safe way to call it.
    unsafe { libmimalloc_sys::mi_collect(false) };
}
