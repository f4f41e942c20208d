//! simfid tells whether an LLM-serving simulator reproduces a real GPU server.
#![warn(missing_docs)]

pub mod error;
pub mod exec;
pub mod fidelity;
pub mod fixture;
pub mod model;
pub mod sim;
pub mod workload;

pub use error::{Error, Result};
