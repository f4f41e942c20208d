use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A GPU SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Short name (`a100`, `h100`, `h200`, `a40`).
    pub name: String,
    /// Memory in GB as Vidur's memory planner counts it (it multiplies by 1024³).
    pub total_memory_gb: u32,
    /// Dense fp16/bf16 peak in TFLOP/s as Vidur records it (`fp16_tflops`).
    pub fp16_tflops: f64,
    /// HBM bandwidth in GB/s.
    pub hbm_gbps: f64,
}

/// A node type: how many devices share one node (decides Vidur's multi-node network rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Vidur's network device name, e.g. `a100_pairwise_nvlink`.
    pub name: String,
    /// Devices per node.
    pub num_devices_per_node: u32,
}

// Sources: A100 80GB SXM: 312 TFLOP/s dense fp16/bf16, 2,039 GB/s (NVIDIA A100 datasheet);
// H100 SXM5: 989 TFLOP/s dense bf16 (Vidur rounds to 1000), 3,350 GB/s (NVIDIA H100 datasheet);
// H200 SXM: 989 TFLOP/s dense bf16, 141 GB at 4,800 GB/s (NVIDIA H200 datasheet);
// A40: 150 TFLOP/s fp16 (Vidur), 48 GB (Vidur counts 45) at 696 GB/s (NVIDIA A40 datasheet).
const DEVICES: &[(&str, u32, f64, f64)] = &[
    ("a100", 80, 312.0, 2039.0),
    ("h100", 80, 1000.0, 3350.0),
    ("h200", 141, 989.0, 4800.0),
    ("a40", 45, 150.0, 696.0),
];

const NODES: &[(&str, u32)] = &[
    ("a40_pairwise_nvlink", 8),
    ("a100_pairwise_nvlink", 4),
    ("h100_pairwise_nvlink", 4),
    ("a100_dgx", 8),
    ("h100_dgx", 8),
    ("h200_dgx", 8),
];

impl DeviceSpec {
    /// A known device by name (case-insensitive).
    pub fn builtin(name: &str) -> Result<DeviceSpec> {
        let lower = name.to_ascii_lowercase();
        DEVICES
            .iter()
            .find(|d| d.0 == lower)
            .map(|&(n, mem, tf, bw)| DeviceSpec {
                name: n.to_string(),
                total_memory_gb: mem,
                fp16_tflops: tf,
                hbm_gbps: bw,
            })
            .ok_or_else(|| Error::UnknownDevice {
                name: name.to_string(),
                known: DEVICES.iter().map(|d| d.0).collect::<Vec<_>>().join(", "),
            })
    }
}

impl NodeSpec {
    /// A known node type by Vidur's network-device name.
    pub fn builtin(name: &str) -> Result<NodeSpec> {
        let lower = name.to_ascii_lowercase();
        NODES
            .iter()
            .find(|d| d.0 == lower)
            .map(|&(n, k)| NodeSpec {
                name: n.to_string(),
                num_devices_per_node: k,
            })
            .ok_or_else(|| Error::UnknownDevice {
                name: name.to_string(),
                known: NODES.iter().map(|d| d.0).collect::<Vec<_>>().join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_devices_resolve() {
        assert_eq!(DeviceSpec::builtin("H100").unwrap().total_memory_gb, 80);
        assert_eq!(DeviceSpec::builtin("h200").unwrap().total_memory_gb, 141);
        assert_eq!(
            NodeSpec::builtin("a100_pairwise_nvlink")
                .unwrap()
                .num_devices_per_node,
            4
        );
    }

    #[test]
    fn unknown_device_lists_known() {
        let e = DeviceSpec::builtin("tpu").unwrap_err().to_string();
        assert!(e.contains("a100") && e.contains("h200"), "{e}");
    }
}
