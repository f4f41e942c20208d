//! The `simfid` command line: a thin layer over the library.

pub mod bench;
pub mod check;
pub mod compare;
pub mod convert;
pub mod output;
pub mod profile;
pub mod simulate;
pub mod vidur;
pub mod vidur_config;
pub mod vidur_flags;

/// Exit codes (stable).
pub mod exit {
    /// A fidelity assertion (`simfid compare --assert`) failed or could not be decided.
    pub const ASSERT_FAILED: i32 = 1;
    /// Bad input: malformed files, unknown flags, impossible configurations.
    pub const BAD_INPUT: i32 = 2;
    /// The simulation stalled: requests were left unfinished (outputs are still written).
    pub const STALLED: i32 = 3;
}
