//! The `simfid` command line: a thin layer over the library.

pub mod bench;
pub mod output;
pub mod profile;
pub mod simulate;
pub mod vidur;
pub mod vidur_config;
pub mod vidur_flags;

/// Exit codes (stable).
pub mod exit {
    /// Bad input: malformed files, unknown flags, impossible configurations.
    pub const BAD_INPUT: i32 = 2;
    /// The simulation stalled: requests were left unfinished (outputs are still written).
    pub const STALLED: i32 = 3;
}
