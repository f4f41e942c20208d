//! The `simfid` command line: a thin layer over the library.

pub mod bench;
pub mod bench_record;
pub mod output;
pub mod record;
pub mod serve;
pub mod simulate;
pub mod trace;
pub mod vidur;
pub mod vidur_flags;

/// Exit codes (stable).
pub mod exit {
    /// Bad input: malformed files, unknown flags, impossible configurations.
    pub const BAD_INPUT: i32 = 2;
    /// The simulation stalled: requests were left unfinished (outputs are still written).
    pub const STALLED: i32 = 3;
    /// `simfid record` was interrupted (ctrl-C) before every request was sent; the fixture
    /// holds every request, the unsent ones as errors (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: i32 = 130;
}
