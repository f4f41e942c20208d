//! Which execution-time model to build, as the `--exec` flags of `simfid simulate` and
//! `simfid serve` name it: `roofline`, `tables:DIR` (Vidur's prediction tables) or
//! `profile:MLP_CSV,ATTENTION_CSV[,ALL_REDUCE_CSV[,SEND_RECV_CSV]]` (Vidur's operator
//! profiles).

use std::path::PathBuf;
use std::str::FromStr;

use super::ExecModel;
use super::profile::{OpProfile, ProfileFiles};
use super::roofline::Roofline;
use super::tables::PredictionTables;
use super::vidur::{VidurModel, VidurPredictorConfig};
use crate::error::{Error, Result};
use crate::model::{DeviceSpec, ModelSpec, NodeSpec};

/// An execution-time model by name (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecSpec {
    /// [`Roofline`]: peak FLOP/s and bandwidth of the device.
    Roofline,
    /// [`VidurModel`] over Vidur's exported prediction tables in this folder.
    Tables(PathBuf),
    /// [`VidurModel`] over Vidur-format operator profiles.
    Profile(ProfileFiles),
}

impl FromStr for ExecSpec {
    type Err = Error;

    /// Parses `roofline`, `tables:DIR` or `profile:MLP_CSV,ATTENTION_CSV[,ALL_REDUCE_CSV[,
    /// SEND_RECV_CSV]]`.
    fn from_str(s: &str) -> Result<ExecSpec> {
        if s == "roofline" {
            return Ok(ExecSpec::Roofline);
        }
        if let Some(dir) = s.strip_prefix("tables:") {
            return Ok(ExecSpec::Tables(dir.into()));
        }
        if let Some(files) = s.strip_prefix("profile:") {
            let parts: Vec<&str> = files.split(',').collect();
            let [mlp, attention, rest @ ..] = parts.as_slice() else {
                return Err(Error::InvalidExecSpec {
                    spec: s.to_string(),
                    expected: "profile:MLP_CSV,ATTENTION_CSV[,ALL_REDUCE_CSV[,SEND_RECV_CSV]]",
                });
            };
            return Ok(ExecSpec::Profile(ProfileFiles {
                mlp: mlp.into(),
                attention: attention.into(),
                all_reduce: rest.first().map(PathBuf::from),
                send_recv: rest.get(1).map(PathBuf::from),
            }));
        }
        Err(Error::InvalidExecSpec {
            spec: s.to_string(),
            expected: "roofline, tables:DIR or profile:MLP_CSV,ATTENTION_CSV",
        })
    }
}

impl ExecSpec {
    /// Builds the model for `model` on `device` with tensor parallelism `tp` and `pp` pipeline
    /// stages (operator profiles also need the KV `block_size`), with a one-line description.
    pub fn build(
        &self,
        model: &ModelSpec,
        device: &DeviceSpec,
        tp: u32,
        pp: u32,
        block_size: u32,
    ) -> Result<(Box<dyn ExecModel>, String)> {
        match self {
            ExecSpec::Roofline => Ok((
                Box::new(Roofline::new(model, device, tp, pp)?),
                format!(
                    "roofline ({} at 50% of peak FLOP/s, 70% of HBM bandwidth)",
                    device.name
                ),
            )),
            ExecSpec::Tables(dir) => {
                let t = PredictionTables::load(dir)?;
                Ok((
                    Box::new(VidurModel::new(
                        &t,
                        model,
                        tp,
                        pp,
                        &VidurPredictorConfig::default(),
                    )?),
                    format!("Vidur prediction tables in {}", dir.display()),
                ))
            }
            ExecSpec::Profile(files) => {
                let node = NodeSpec::builtin(&format!("{}_pairwise_nvlink", device.name))
                    .or_else(|_| NodeSpec::builtin("a100_pairwise_nvlink"))?;
                let p = OpProfile::load(files, model, tp, pp, block_size, &node)?;
                Ok((
                    Box::new(VidurModel::new(
                        &p,
                        model,
                        tp,
                        pp,
                        &VidurPredictorConfig::default(),
                    )?),
                    format!("Vidur operator profiles {files:?}"),
                ))
            }
        }
    }
}
