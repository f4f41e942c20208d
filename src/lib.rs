//! simfid tells whether an LLM-serving simulator reproduces a real GPU server.
#![warn(missing_docs)]

pub mod error;
pub mod exec;
pub mod fidelity;
pub mod fixture;
pub mod model;
#[cfg(feature = "record")]
pub mod record;
#[cfg(feature = "record")]
pub mod serve;
pub mod sim;
#[cfg(feature = "tokenizer")]
pub mod tokenize;
pub mod workload;

pub use error::{Error, Result};
