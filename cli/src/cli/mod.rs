//! The `simfid` command line: a thin layer over the library.

pub mod args;
pub mod bench;
pub mod bench_record;
pub mod check;
pub mod compare;
pub mod convert;
pub mod output;
pub mod profile;
pub mod record;
pub mod report;
pub mod serve;
pub mod simulate;
pub mod trace;
pub mod vidur;
pub mod vidur_config;
pub mod vidur_flags;

/// Exit codes (stable).
pub mod exit {
    /// A fidelity assertion (`simfid compare --assert`) failed or could not be decided.
    pub const ASSERT_FAILED: i32 = 1;
    /// Bad input: malformed files, unknown flags, impossible configurations (every library
    /// error: [`simfid::Error::exit_code`]).
    pub const BAD_INPUT: i32 = simfid::error::BAD_INPUT;
    /// The simulation stalled: requests were left unfinished (outputs are still written).
    pub const STALLED: i32 = 3;
    /// `simfid record`: more requests failed than `--max-failed-fraction` allows (the fixture
    /// is written, every failure in it).
    pub const REQUESTS_FAILED: i32 = 4;
    /// `simfid record` was interrupted (ctrl-C) before every request was sent; the fixture
    /// holds every request, the unsent ones as errors (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: i32 = 130;
}
