//! Fidelity statistics: how a simulated run compares with a real one.

pub mod quantile;
