//! [`grid_mape`]: how far two [`OpTimes`] sources are apart over Vidur's prediction grid.

use std::fmt;

use super::op_profile::PredictionGrid;
use crate::error::Result;
use crate::exec::{LinearOp, OpTimes};

/// An operator of Vidur's prediction grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GridOp {
    /// A linear op over `num_tokens`.
    Linear(LinearOp),
    /// `attn_kv_cache_save` over `num_tokens`.
    KvCacheSave,
    /// `attn_decode` over `(batch_size, kv_cache_size)`.
    AttnDecode,
    /// `attn_prefill` over `(kv_cache_size, prefill_chunk_size²)`.
    AttnPrefill,
    /// `all_reduce` over `num_tokens`.
    AllReduce,
    /// `send_recv` over `num_tokens`.
    SendRecv,
}

impl GridOp {
    /// Vidur's name of the op (its prediction-table file stem).
    pub fn name(self) -> &'static str {
        match self {
            GridOp::Linear(op) => op.name(),
            GridOp::KvCacheSave => "attn_kv_cache_save",
            GridOp::AttnDecode => "attn_decode",
            GridOp::AttnPrefill => "attn_prefill",
            GridOp::AllReduce => "all_reduce",
            GridOp::SendRecv => "send_recv",
        }
    }
}

/// How far a candidate is from a reference on one operator's grid points.
#[derive(Debug, Clone, PartialEq)]
pub struct OpMape {
    /// The operator.
    pub op: GridOp,
    /// Grid points compared (reference ≠ 0).
    pub points: u64,
    /// Grid points skipped because the reference is 0 there.
    pub zero_reference: u64,
    /// Of the skipped points, those where the candidate is not 0.
    pub zero_mismatches: u64,
    /// Sum of the absolute percentage errors over the compared points.
    pub sum_ape: f64,
    /// Largest absolute percentage error, 0 when no point was compared.
    pub max_ape: f64,
}

impl OpMape {
    fn new(op: GridOp) -> OpMape {
        OpMape {
            op,
            points: 0,
            zero_reference: 0,
            zero_mismatches: 0,
            sum_ape: 0.0,
            max_ape: 0.0,
        }
    }

    fn add(&mut self, candidate: f64, reference: f64) {
        if reference == 0.0 {
            self.zero_reference += 1;
            if candidate != 0.0 {
                self.zero_mismatches += 1;
            }
            return;
        }
        let ape = 100.0 * ((candidate - reference) / reference).abs();
        self.points += 1;
        self.sum_ape += ape;
        self.max_ape = self.max_ape.max(ape);
    }

    /// Mean absolute percentage error over the compared points, `None` when the reference
    /// is 0 at every grid point.
    pub fn mape(&self) -> Option<f64> {
        (self.points > 0).then(|| self.sum_ape / self.points as f64)
    }
}

/// Per-operator MAPE of a candidate [`OpTimes`] against a reference over a
/// [`PredictionGrid`], from [`grid_mape`].
#[derive(Debug, Clone, PartialEq)]
pub struct MapeReport {
    /// One entry per operator compared, in grid order.
    pub ops: Vec<OpMape>,
}

impl MapeReport {
    /// The entry of `op`, if it was compared.
    pub fn op(&self, op: GridOp) -> Option<&OpMape> {
        self.ops.iter().find(|o| o.op == op)
    }

    /// The overall figure: the mean of the per-operator MAPEs (each operator weighs the
    /// same, whatever its number of grid points), over the operators that have one.
    pub fn overall(&self) -> Option<f64> {
        let mapes: Vec<f64> = self.ops.iter().filter_map(OpMape::mape).collect();
        (!mapes.is_empty()).then(|| mapes.iter().sum::<f64>() / mapes.len() as f64)
    }

    /// The MAPE over all compared grid points of all operators pooled (dominated by the
    /// 266,240 prefill points of the default grid).
    pub fn pooled(&self) -> Option<f64> {
        let points: u64 = self.ops.iter().map(|o| o.points).sum();
        let sum: f64 = self.ops.iter().map(|o| o.sum_ape).sum();
        (points > 0).then(|| sum / points as f64)
    }
}

impl fmt::Display for MapeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
        writeln!(
            f,
            "{:<26} {:>8} {:>9} {:>10} {:>10} {:>9}",
            "op", "points", "MAPE %", "max APE %", "ref == 0", "mismatch"
        )?;
        for o in &self.ops {
            writeln!(
                f,
                "{:<26} {:>8} {:>9} {:>10} {:>10} {:>9}",
                o.op.name(),
                o.points,
                pct(o.mape()),
                if o.points > 0 {
                    format!("{:.3}", o.max_ape)
                } else {
                    "n/a".to_string()
                },
                o.zero_reference,
                o.zero_mismatches
            )?;
        }
        writeln!(
            f,
            "{:<26} {:>8} {:>9}",
            "overall (mean of ops)",
            "",
            pct(self.overall())
        )?;
        write!(
            f,
            "{:<26} {:>8} {:>9}",
            "pooled (all points)",
            self.ops.iter().map(|o| o.points).sum::<u64>(),
            pct(self.pooled())
        )
    }
}

/// Compares `candidate` with `reference` at every point of Vidur's prediction `grid`:
/// every linear op and `kv_cache_save` over tokens 1..=`max_tokens`; decode attention over
/// batch 1..=`max_batch_size` × kv 0..=`max_kv_cache_size` step `kv_granularity`; prefill
/// attention over the same kv values × chunk 1..=`max_prefill_chunk_size` (key chunk²);
/// all-reduce over tokens when `tp > 1` and send/recv when `pp > 1` (Vidur predicts them
/// only then).
///
/// The absolute percentage error at a point is `100 × |candidate − reference| / reference`.
/// Points where the reference is 0 have no percentage error: they are skipped and counted
/// ([`OpMape::zero_reference`], with [`OpMape::zero_mismatches`] where the candidate is not
/// 0), rather than scored 0 or 100 as Vidur's training scorer does. An error from either
/// side at a grid point is returned.
pub fn grid_mape(
    candidate: &dyn OpTimes,
    reference: &dyn OpTimes,
    grid: &PredictionGrid,
    tp: u32,
    pp: u32,
) -> Result<MapeReport> {
    let mut ops = Vec::new();
    let tokens = 1..=grid.max_tokens;
    for op in LinearOp::ALL {
        let mut m = OpMape::new(GridOp::Linear(op));
        for t in tokens.clone() {
            m.add(candidate.linear(op, t)?, reference.linear(op, t)?);
        }
        ops.push(m);
    }
    let mut m = OpMape::new(GridOp::KvCacheSave);
    for t in tokens.clone() {
        m.add(candidate.kv_cache_save(t)?, reference.kv_cache_save(t)?);
    }
    ops.push(m);

    let step = grid.kv_granularity.max(1) as usize;
    let kvs = (0..=grid.max_kv_cache_size).step_by(step);
    let mut m = OpMape::new(GridOp::AttnDecode);
    for b in 1..=grid.max_batch_size {
        for kv in kvs.clone() {
            m.add(candidate.attn_decode(b, kv)?, reference.attn_decode(b, kv)?);
        }
    }
    ops.push(m);
    let mut m = OpMape::new(GridOp::AttnPrefill);
    for kv in kvs {
        for c in 1..=u64::from(grid.max_prefill_chunk_size) {
            m.add(
                candidate.attn_prefill(kv, c * c)?,
                reference.attn_prefill(kv, c * c)?,
            );
        }
    }
    ops.push(m);

    if tp > 1 {
        let mut m = OpMape::new(GridOp::AllReduce);
        for t in tokens.clone() {
            m.add(candidate.all_reduce(t)?, reference.all_reduce(t)?);
        }
        ops.push(m);
    }
    if pp > 1 {
        let mut m = OpMape::new(GridOp::SendRecv);
        for t in tokens {
            m.add(candidate.send_recv(t)?, reference.send_recv(t)?);
        }
        ops.push(m);
    }
    Ok(MapeReport { ops })
}
