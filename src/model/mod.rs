//! What is being served, and on what: [`ModelSpec`] (architecture facts from a HuggingFace
//! `config.json`, with Qwen3-0.6B and Vidur's models built in), [`DeviceSpec`] (GPU memory,
//! peak FLOP/s, HBM bandwidth) and [`NodeSpec`] (devices per node, for Vidur's network data).

mod device;
mod spec;

pub use device::{DeviceSpec, NodeSpec};
pub use spec::ModelSpec;
