//! Integration tests: the real tollgate binary against real origins on loopback.
