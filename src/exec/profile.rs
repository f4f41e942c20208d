//! Operator times from Vidur-format operator profiles, with simfid's own interpolation.
//!
//! [`OpProfile`] reads the four profile files Vidur trains its execution-time predictor on
//! ([`ProfileFiles`]: `mlp.csv`, `attention.csv` and, for tensor or pipeline parallelism,
//! `all_reduce.csv` / `send_recv.csv`), keeps the rows Vidur would keep for a model and
//! parallel layout (SPEC §2.7), and answers [`OpTimes`] queries by interpolating the profiled
//! medians. [`grid_mape`] measures how far any two [`OpTimes`] are apart over Vidur's
//! prediction grid ([`PredictionGrid`]) and returns a [`MapeReport`].
//!
//! # Reading the profiles
//!
//! Every file is read whole; exact duplicate rows are dropped first (as Vidur's
//! `drop_duplicates()` does), then the rows are filtered:
//!
//! | file | rows kept |
//! | --- | --- |
//! | `mlp.csv` | `n_head`, `n_kv_head`, `n_embd`, `n_expanded_embd`, `use_gated_mlp`, `vocab_size` equal to the model's, `num_tensor_parallel_workers == tp` |
//! | `attention.csv` | `n_embd`, `n_q_head`, `n_kv_head` equal to the model's, `block_size` equal to the cache block size, `num_tensor_parallel_workers == tp` |
//! | `all_reduce.csv` (read only when `tp > 1`) | `num_workers == tp`, `devices_per_node == tp`, `collective == all_reduce` |
//! | `send_recv.csv` (read only when `pp > 1`) | `collective == send_recv`, `devices_per_node` = 1 when `tp × pp` exceeds the node's devices, else 2 |
//!
//! A filter that keeps no row is an [`Error::Config`] naming the file and the values filtered
//! on; a malformed number is an [`Error::Csv`] with the file and the 1-based line (the header
//! is line 1). The target of each operator is its `time_stats.<op>.median` column (ms). The
//! norm and `add` columns of `mlp.csv` and `attn_kv_cache_save` of `attention.csv` may be
//! missing (then every time is 0) or empty (that row's time is 0), as in Vidur. Both
//! `attention.csv` layouts are read by column name: the current 36-column one and the
//! historic May-2024 32-column one, whose rows leave the cells of the operator they did not
//! measure empty (only the cells a row is used for must hold a number). Attention rows with
//! `prefill_chunk_size == 0` are decodes, the others prefills. Collective sizes are converted
//! to tokens as `size / embedding_dim / 2` (fp16 activations).
//!
//! # Interpolation
//!
//! Vidur fits random forests to these rows and tabulates the forests over a grid. simfid
//! interpolates the rows instead; rows with the same features are averaged first.
//!
//! * **Linear ops, `attn_kv_cache_save`, all-reduce, send/recv** (one feature, `num_tokens`;
//!   `kv_cache_save` uses `max(prefill_chunk_size, batch_size)` of every attention row):
//!   piecewise-linear through the profiled points, and constant beyond the first and last
//!   profiled point (a forest cannot extrapolate either).
//! * **Decode attention** (`batch_size`, `kv_cache_size`): the profile is a full grid
//!   (in the shipped profiles batch 1..128 × kv 32..4032), so this is bilinear interpolation on that grid, clamped to
//!   its edges (kv 0 reads kv 32, kv 4096 reads kv 4032).
//! * **Prefill attention** (`kv_cache_size`, `prefill_chunk_size²`): the profile is a ragged
//!   grid (in the shipped profiles a triangle `kv + chunk ≤ max_model_len`) of chunk rows. Each profiled chunk size is a
//!   row, piecewise-linear in `kv` and held constant beyond that row's largest profiled `kv`;
//!   between rows the two neighbouring rows are interpolated linearly in `chunk²` (the feature
//!   Vidur uses, and exact for the quadratic cost of a causal prefill without a cache);
//!   chunks below the smallest profiled one read the smallest row. So the half of the
//!   prediction grid outside the profiled triangle carries each chunk's value at its largest
//!   profiled context, which is close to what Vidur's forests predict there.
//!
//! Interpolating follows the profiled medians where a forest's piecewise-constant leaves
//! step from one to the next. Against Vidur's own tables of the two reference configurations
//! (A100, Llama-3-8B TP1 and Llama-2-70B TP2, forests of 250 trees of depth 16) the MAPE over
//! the whole prediction grid is about 0.5 % averaged over operators, 0.3–0.6 % for every
//! linear op, all-reduce and decode attention, and 1.3 % for prefill attention (see the
//! `llama*_within_3_percent_of_vidur` tests in `tests/integration/vidur_profile.rs`;
//! [`grid_mape`] measures it).
//!
//! Prefill is where the two differ most, and for a physical reason: the profiled prefill times
//! step every 64 chunk tokens and are flat in between (chunks 160 and 192 take the same time,
//! 224 and 256 the next step up), as a kernel working on 64-token query tiles would. A forest
//! puts each step half-way between two profiled chunks (in chunk²); linear interpolation
//! ramps across the gap. A tile-aware rule (a profiled chunk stands for every chunk that rounds
//! up to it) would be closer to the kernel but further from Vidur (2.8 % instead of 1.3 % on
//! the Llama-3-8B grid), and nearest-neighbour in chunk² would copy the forest (0.6 %);
//! simfid keeps the plain linear rule, which assumes nothing about the kernel.
//!
//! A query is a binary search per axis plus two row evaluations: filling the dense
//! 65 × 4096 prefill grid takes about 10 ms in a release build (120 ms in debug).
//!
//! # Range
//!
//! An [`OpProfile`] answers queries inside its [`PredictionGrid`] (Vidur's default: 1..=4096
//! tokens, batch 1..=128, kv 0..=4096, chunk 1..=4096) and returns [`Error::OutOfRange`]
//! outside it, as Vidur's tables raise `KeyError`. Inside the box any key is answered, not only
//! the keys Vidur tabulates (kv need not be a multiple of 64, `chunk_sq` need not be a square).
//! When a [`VidurModel`](crate::exec::vidur::VidurModel) is configured with a wider grid (Orca's
//! token range), give the profile the same one:
//! `profile.with_grid(PredictionGrid::from(&cfg))`.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::exec::vidur::VidurPredictorConfig;
use crate::exec::{LinearOp, OpTimes};
use crate::model::{ModelSpec, NodeSpec};

/// The profile files of one device, model and node type (Vidur's `{compute,attention,
/// all_reduce,send_recv}_input_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFiles {
    /// `mlp.csv`: linear layers, norms, rope and residual add per token count.
    pub mlp: PathBuf,
    /// `attention.csv`: prefill and decode attention (current or historic layout).
    pub attention: PathBuf,
    /// `all_reduce.csv` of the node type; needed when `tp > 1`.
    pub all_reduce: Option<PathBuf>,
    /// `send_recv.csv` of the node type; needed when `pp > 1`.
    pub send_recv: Option<PathBuf>,
}

/// The key ranges Vidur tabulates its predictions over (SPEC §2.7, "Prediction grid").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictionGrid {
    /// Largest token count of the linear ops, `kv_cache_save` and the collectives
    /// (`prediction_max_tokens_per_request`, × `prediction_max_batch_size` for Orca).
    pub max_tokens: u32,
    /// Largest decode batch (`prediction_max_batch_size`).
    pub max_batch_size: u32,
    /// Largest KV-cache length of the attention tables (`prediction_max_tokens_per_request`).
    pub max_kv_cache_size: u32,
    /// Step of the tabulated KV-cache lengths (`kv_cache_prediction_granularity`).
    pub kv_granularity: u32,
    /// Largest prefill chunk (`prediction_max_prefill_chunk_size`).
    pub max_prefill_chunk_size: u32,
}

impl Default for PredictionGrid {
    /// Vidur's defaults: 4096 tokens, batch 128, kv 0..=4096 step 64, chunk 4096.
    fn default() -> Self {
        PredictionGrid {
            max_tokens: 4096,
            max_batch_size: 128,
            max_kv_cache_size: 4096,
            kv_granularity: 64,
            max_prefill_chunk_size: 4096,
        }
    }
}

impl From<&VidurPredictorConfig> for PredictionGrid {
    /// The grid a [`VidurModel`](crate::exec::vidur::VidurModel) with this configuration
    /// tabulates.
    fn from(cfg: &VidurPredictorConfig) -> Self {
        PredictionGrid {
            max_tokens: cfg.max_tokens,
            max_batch_size: cfg.max_batch_size,
            max_kv_cache_size: cfg.max_kv,
            kv_granularity: cfg.kv_granularity,
            max_prefill_chunk_size: cfg.max_prefill_chunk,
        }
    }
}

/// Per-operator times interpolated from Vidur-format operator profiles (see the module docs).
#[derive(Debug, Clone)]
pub struct OpProfile {
    /// Indexed like [`LinearOp::ALL`].
    linear: Vec<Curve>,
    kv_cache_save: Curve,
    /// Rows keyed by batch size, each over kv.
    decode: Surface,
    /// Rows keyed by chunk², each over kv.
    prefill: Surface,
    all_reduce: Option<Curve>,
    send_recv: Option<Curve>,
    grid: PredictionGrid,
}

impl OpProfile {
    /// Reads the profiles for `model` at tensor parallelism `tp` and pipeline parallelism
    /// `pp`, with KV-cache blocks of `block_size` tokens on nodes of type `node`. The
    /// all-reduce profile is read only when `tp > 1`, the send/recv profile only when
    /// `pp > 1`; each is then required. Queries answer over [`PredictionGrid::default`].
    pub fn load(
        files: &ProfileFiles,
        model: &ModelSpec,
        tp: u32,
        pp: u32,
        block_size: u32,
        node: &NodeSpec,
    ) -> Result<OpProfile> {
        if tp == 0 || pp == 0 {
            return Err(Error::Config(format!(
                "tensor parallelism ({tp}) and pipeline parallelism ({pp}) must be at least 1"
            )));
        }
        let workers = tp * pp;
        let per_node = node.num_devices_per_node;
        if per_node == 0 || (workers >= per_node && !workers.is_multiple_of(per_node)) {
            return Err(Error::Config(format!(
                "{workers} workers (tp {tp} × pp {pp}) must be fewer than or a multiple of the \
                 {per_node} devices per node of {}",
                node.name
            )));
        }
        let multi_node = workers > per_node;

        let linear = load_mlp(&files.mlp, model, tp)?;
        let (kv_cache_save, decode, prefill) =
            load_attention(&files.attention, model, tp, block_size)?;
        let all_reduce = if tp > 1 {
            let path = files.all_reduce.as_deref().ok_or_else(|| {
                Error::Config(format!(
                    "tensor parallelism {tp} needs an all_reduce profile"
                ))
            })?;
            let filter = CollectiveFilter {
                collective: "all_reduce",
                num_workers: Some(tp),
                devices_per_node: tp,
            };
            Some(load_collective(path, model, &filter)?)
        } else {
            None
        };
        let send_recv = if pp > 1 {
            let path = files.send_recv.as_deref().ok_or_else(|| {
                Error::Config(format!(
                    "pipeline parallelism {pp} needs a send_recv profile"
                ))
            })?;
            let filter = CollectiveFilter {
                collective: "send_recv",
                num_workers: None,
                devices_per_node: if multi_node { 1 } else { 2 },
            };
            Some(load_collective(path, model, &filter)?)
        } else {
            None
        };
        Ok(OpProfile {
            linear,
            kv_cache_save,
            decode,
            prefill,
            all_reduce,
            send_recv,
            grid: PredictionGrid::default(),
        })
    }

    /// The same profile answering over `grid` instead (e.g. Vidur's wider token range for
    /// Orca).
    pub fn with_grid(mut self, grid: PredictionGrid) -> OpProfile {
        self.grid = grid;
        self
    }

    /// The key ranges this profile answers.
    pub fn grid(&self) -> &PredictionGrid {
        &self.grid
    }

    fn check_tokens(&self, what: &str, tokens: u32) -> Result<()> {
        if tokens == 0 || tokens > self.grid.max_tokens {
            return Err(Error::OutOfRange {
                what: format!(
                    "{what} at {tokens} tokens (profile answers 1..={})",
                    self.grid.max_tokens
                ),
            });
        }
        Ok(())
    }
}

impl OpTimes for OpProfile {
    fn linear(&self, op: LinearOp, tokens: u32) -> Result<f64> {
        self.check_tokens(op.name(), tokens)?;
        Ok(self.linear[linear_index(op)].eval(tokens as f64))
    }

    fn kv_cache_save(&self, tokens: u32) -> Result<f64> {
        self.check_tokens("attn_kv_cache_save", tokens)?;
        Ok(self.kv_cache_save.eval(tokens as f64))
    }

    fn attn_decode(&self, batch_size: u32, kv: u32) -> Result<f64> {
        let g = &self.grid;
        if batch_size == 0 || batch_size > g.max_batch_size || kv > g.max_kv_cache_size {
            return Err(Error::OutOfRange {
                what: format!(
                    "attn_decode at batch_size {batch_size}, kv_cache_size {kv} (profile \
                     answers batch 1..={}, kv 0..={})",
                    g.max_batch_size, g.max_kv_cache_size
                ),
            });
        }
        Ok(self.decode.eval(batch_size as f64, kv as f64))
    }

    fn attn_prefill(&self, kv: u32, chunk_sq: u64) -> Result<f64> {
        let g = &self.grid;
        let max_sq = u64::from(g.max_prefill_chunk_size).pow(2);
        if chunk_sq == 0 || chunk_sq > max_sq || kv > g.max_kv_cache_size {
            return Err(Error::OutOfRange {
                what: format!(
                    "attn_prefill at kv_cache_size {kv}, prefill_chunk_size² {chunk_sq} \
                     (profile answers kv 0..={}, chunk² 1..={max_sq})",
                    g.max_kv_cache_size
                ),
            });
        }
        Ok(self.prefill.eval(chunk_sq as f64, kv as f64))
    }

    fn all_reduce(&self, tokens: u32) -> Result<f64> {
        self.check_tokens("all_reduce", tokens)?;
        match &self.all_reduce {
            Some(c) => Ok(c.eval(tokens as f64)),
            None => Err(Error::OutOfRange {
                what: format!("all_reduce at {tokens} tokens (no all-reduce profile: tp = 1)"),
            }),
        }
    }

    fn send_recv(&self, tokens: u32) -> Result<f64> {
        self.check_tokens("send_recv", tokens)?;
        match &self.send_recv {
            Some(c) => Ok(c.eval(tokens as f64)),
            None => Err(Error::OutOfRange {
                what: format!("send_recv at {tokens} tokens (no send/recv profile: pp = 1)"),
            }),
        }
    }
}

fn linear_index(op: LinearOp) -> usize {
    LinearOp::ALL
        .iter()
        .position(|&o| o == op)
        .expect("LinearOp::ALL lists every op")
}

// ---------------------------------------------------------------------------------------------
// Interpolants

/// A piecewise-linear function through points with distinct, increasing `xs`, constant beyond
/// the first and last point.
#[derive(Debug, Clone, PartialEq)]
struct Curve {
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Curve {
    /// Sorts the points by x and averages the y of equal x. `points` must not be empty.
    fn from_points(mut points: Vec<(f64, f64)>) -> Curve {
        debug_assert!(!points.is_empty());
        points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut i = 0;
        while i < points.len() {
            let x = points[i].0;
            let mut j = i;
            let mut sum = 0.0;
            while j < points.len() && points[j].0 == x {
                sum += points[j].1;
                j += 1;
            }
            xs.push(x);
            ys.push(sum / (j - i) as f64);
            i = j;
        }
        Curve { xs, ys }
    }

    fn eval(&self, x: f64) -> f64 {
        let n = self.xs.len();
        // Index of the first profiled x above the query.
        let hi = self.xs.partition_point(|&p| p <= x);
        if hi == 0 {
            return self.ys[0];
        }
        if hi == n {
            return self.ys[n - 1];
        }
        let (x0, x1) = (self.xs[hi - 1], self.xs[hi]);
        let (y0, y1) = (self.ys[hi - 1], self.ys[hi]);
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }
}

/// A function of two features on a ragged grid: rows at distinct increasing `keys`, each a
/// [`Curve`] over the second feature with its own range. Between rows the two neighbouring
/// rows' values are interpolated linearly in the key; beyond the first and last row the
/// nearest row is used.
#[derive(Debug, Clone, PartialEq)]
struct Surface {
    keys: Vec<f64>,
    rows: Vec<Curve>,
}

impl Surface {
    /// Groups `(key, x, y)` points into rows by key. `points` must not be empty.
    fn from_points(mut points: Vec<(f64, f64, f64)>) -> Surface {
        debug_assert!(!points.is_empty());
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut keys = Vec::new();
        let mut rows = Vec::new();
        let mut i = 0;
        while i < points.len() {
            let key = points[i].0;
            let j = i + points[i..].partition_point(|p| p.0 == key);
            keys.push(key);
            rows.push(Curve::from_points(
                points[i..j].iter().map(|p| (p.1, p.2)).collect(),
            ));
            i = j;
        }
        Surface { keys, rows }
    }

    fn eval(&self, key: f64, x: f64) -> f64 {
        let n = self.keys.len();
        let hi = self.keys.partition_point(|&k| k <= key);
        if hi == 0 {
            return self.rows[0].eval(x);
        }
        if hi == n {
            return self.rows[n - 1].eval(x);
        }
        let (k0, k1) = (self.keys[hi - 1], self.keys[hi]);
        let y0 = self.rows[hi - 1].eval(x);
        if key == k0 {
            return y0;
        }
        let y1 = self.rows[hi].eval(x);
        y0 + (y1 - y0) * (key - k0) / (k1 - k0)
    }
}

// ---------------------------------------------------------------------------------------------
// CSV reading

/// A profile CSV read whole, exact duplicate rows dropped, with its header index.
struct Table {
    path: PathBuf,
    header: Vec<String>,
    /// `(1-based line, fields)`.
    rows: Vec<(u64, Vec<String>)>,
}

impl Table {
    fn read(path: &Path) -> Result<Table> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(std::io::BufReader::new(file));
        let header = reader
            .headers()
            .map_err(|e| csv_error(path, &e))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut seen = HashSet::new();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(path, &e))?;
            let line = record.position().map_or(0, |p| p.line());
            let fields: Vec<String> = record.iter().map(str::to_string).collect();
            if seen.insert(fields.clone()) {
                rows.push((line, fields));
            }
        }
        Ok(Table {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// The index of a column that must exist.
    fn column(&self, name: &str) -> Result<usize> {
        self.optional_column(name).ok_or_else(|| {
            Error::csv(
                &self.path,
                1,
                format!("missing column '{name}' in the header"),
            )
        })
    }

    fn optional_column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn field<'a>(&self, line: u64, fields: &'a [String], col: usize) -> Result<&'a str> {
        fields.get(col).map(|s| s.trim()).ok_or_else(|| {
            Error::csv(
                &self.path,
                line,
                format!("missing field '{}'", self.header[col]),
            )
        })
    }

    /// A finite number.
    fn number(&self, line: u64, fields: &[String], col: usize) -> Result<f64> {
        let text = self.field(line, fields, col)?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(Error::csv(
                &self.path,
                line,
                format!("'{}' is not a finite number: '{text}'", self.header[col]),
            )),
        }
    }

    /// A finite number, or 0 for an empty cell or a missing column (`col == None`).
    fn number_or_zero(&self, line: u64, fields: &[String], col: Option<usize>) -> Result<f64> {
        match col {
            None => Ok(0.0),
            Some(c) if self.field(line, fields, c)?.is_empty() => Ok(0.0),
            Some(c) => self.number(line, fields, c),
        }
    }

    fn boolean(&self, line: u64, fields: &[String], col: usize) -> Result<bool> {
        match self.field(line, fields, col)? {
            "True" | "true" | "1" => Ok(true),
            "False" | "false" | "0" => Ok(false),
            text => Err(Error::csv(
                &self.path,
                line,
                format!("'{}' is not a boolean: '{text}'", self.header[col]),
            )),
        }
    }

    /// Whether a row matches every numeric filter `(column, value)`.
    fn matches(&self, line: u64, fields: &[String], filters: &[(usize, f64)]) -> Result<bool> {
        for &(col, want) in filters {
            if self.number(line, fields, col)? != want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn no_rows(&self, filters: &str) -> Error {
        Error::Config(format!(
            "{}: no profile rows with {filters}",
            self.path.display()
        ))
    }
}

fn csv_error(path: &Path, e: &csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::csv(path, line, e.to_string())
}

/// Numeric filters `(column name, value)` resolved to column indices.
fn resolve_filters(table: &Table, filters: &[(&str, f64)]) -> Result<Vec<(usize, f64)>> {
    filters
        .iter()
        .map(|&(name, v)| Ok((table.column(name)?, v)))
        .collect()
}

fn describe(filters: &[(&str, f64)]) -> String {
    filters
        .iter()
        .map(|(n, v)| format!("{n} == {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn median_column(op: &str) -> String {
    format!("time_stats.{op}.median")
}

fn load_mlp(path: &Path, model: &ModelSpec, tp: u32) -> Result<Vec<Curve>> {
    let table = Table::read(path)?;
    let filters = [
        ("n_head", f64::from(model.num_q_heads)),
        ("n_kv_head", f64::from(model.num_kv_heads)),
        ("n_embd", f64::from(model.embedding_dim)),
        ("n_expanded_embd", f64::from(model.mlp_hidden_dim)),
        ("vocab_size", f64::from(model.vocab_size)),
        ("num_tensor_parallel_workers", f64::from(tp)),
    ];
    let cols = resolve_filters(&table, &filters)?;
    let gated = table.column("use_gated_mlp")?;
    let tokens = table.column("num_tokens")?;
    // Norms and add may be absent or empty (then 0); the other ops must have a number.
    let targets = LinearOp::ALL
        .iter()
        .map(|op| {
            let name = median_column(op.name());
            let zero_ok = matches!(
                op,
                LinearOp::InputLayernorm | LinearOp::PostAttentionLayernorm | LinearOp::Add
            );
            if zero_ok {
                Ok((table.optional_column(&name), true))
            } else {
                table.column(&name).map(|c| (Some(c), false))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut points = vec![Vec::new(); LinearOp::ALL.len()];
    for (line, fields) in &table.rows {
        let line = *line;
        if !table.matches(line, fields, &cols)?
            || table.boolean(line, fields, gated)? != model.use_gated_mlp
        {
            continue;
        }
        let x = table.number(line, fields, tokens)?;
        for (i, &(col, zero_ok)) in targets.iter().enumerate() {
            let y = match col {
                Some(c) if !zero_ok => table.number(line, fields, c)?,
                _ => table.number_or_zero(line, fields, col)?,
            };
            points[i].push((x, y));
        }
    }
    if points[0].is_empty() {
        return Err(table.no_rows(&format!(
            "{}, use_gated_mlp == {}",
            describe(&filters),
            model.use_gated_mlp
        )));
    }
    Ok(points.into_iter().map(Curve::from_points).collect())
}

fn load_attention(
    path: &Path,
    model: &ModelSpec,
    tp: u32,
    block_size: u32,
) -> Result<(Curve, Surface, Surface)> {
    let table = Table::read(path)?;
    let filters = [
        ("n_embd", f64::from(model.embedding_dim)),
        ("n_q_head", f64::from(model.num_q_heads)),
        ("n_kv_head", f64::from(model.num_kv_heads)),
        ("block_size", f64::from(block_size)),
        ("num_tensor_parallel_workers", f64::from(tp)),
    ];
    let cols = resolve_filters(&table, &filters)?;
    let batch = table.column("batch_size")?;
    let chunk = table.column("prefill_chunk_size")?;
    let kv = table.column("kv_cache_size")?;
    let prefill_t = table.column(&median_column("attn_prefill"))?;
    let decode_t = table.column(&median_column("attn_decode"))?;
    let save_t = table.optional_column(&median_column("attn_kv_cache_save"));

    let mut save = Vec::new();
    let mut decode = Vec::new();
    let mut prefill = Vec::new();
    for (line, fields) in &table.rows {
        let line = *line;
        if !table.matches(line, fields, &cols)? {
            continue;
        }
        let b = table.number(line, fields, batch)?;
        let c = table.number(line, fields, chunk)?;
        let k = table.number(line, fields, kv)?;
        save.push((c.max(b), table.number_or_zero(line, fields, save_t)?));
        if c == 0.0 {
            decode.push((b, k, table.number(line, fields, decode_t)?));
        } else {
            prefill.push((c * c, k, table.number(line, fields, prefill_t)?));
        }
    }
    if save.is_empty() {
        return Err(table.no_rows(&describe(&filters)));
    }
    if decode.is_empty() {
        return Err(table.no_rows(&format!(
            "{}, prefill_chunk_size == 0 (decode)",
            describe(&filters)
        )));
    }
    if prefill.is_empty() {
        return Err(table.no_rows(&format!(
            "{}, prefill_chunk_size > 0 (prefill)",
            describe(&filters)
        )));
    }
    Ok((
        Curve::from_points(save),
        Surface::from_points(decode),
        Surface::from_points(prefill),
    ))
}

struct CollectiveFilter {
    collective: &'static str,
    num_workers: Option<u32>,
    devices_per_node: u32,
}

fn load_collective(path: &Path, model: &ModelSpec, filter: &CollectiveFilter) -> Result<Curve> {
    let table = Table::read(path)?;
    let mut filters = vec![("devices_per_node", f64::from(filter.devices_per_node))];
    if let Some(n) = filter.num_workers {
        filters.push(("num_workers", f64::from(n)));
    }
    let cols = resolve_filters(&table, &filters)?;
    let collective = table.column("collective")?;
    let size = table.column("size")?;
    let bytes_per_token = 2.0 * f64::from(model.embedding_dim);
    let mut kept = Vec::new();
    for (line, fields) in &table.rows {
        if table.field(*line, fields, collective)? == filter.collective
            && table.matches(*line, fields, &cols)?
        {
            kept.push((*line, fields));
        }
    }
    if kept.is_empty() {
        return Err(table.no_rows(&format!(
            "collective == {}, {}",
            filter.collective,
            describe(&filters)
        )));
    }
    let target = table.column(&median_column(filter.collective))?;
    let points = kept
        .into_iter()
        .map(|(line, fields)| {
            let tokens = table.number(line, fields, size)? / bytes_per_token;
            Ok((tokens, table.number(line, fields, target)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Curve::from_points(points))
}

// ---------------------------------------------------------------------------------------------
// MAPE over the prediction grid

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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    // -----------------------------------------------------------------------------------------
    // Synthetic profiles

    /// A fresh, empty folder under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "simfid-profile-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A tiny model: 4 q heads, 2 kv heads, embedding 64, MLP 128, vocab 1000.
    fn tiny_model() -> ModelSpec {
        ModelSpec {
            name: "tiny".into(),
            num_layers: 2,
            num_q_heads: 4,
            num_kv_heads: 2,
            embedding_dim: 64,
            head_dim: 16,
            mlp_hidden_dim: 128,
            use_gated_mlp: true,
            vocab_size: 1000,
            max_position_embeddings: 4096,
            rope_theta: 10000.0,
            post_attn_norm: true,
            tie_word_embeddings: false,
        }
    }

    fn node(devices: u32) -> NodeSpec {
        NodeSpec {
            name: "test_node".into(),
            num_devices_per_node: devices,
        }
    }

    /// A CSV with `header`, one line per row; unset columns hold `default`.
    fn csv_text(header: &[String], rows: &[Vec<(&str, String)>], default: &str) -> String {
        let mut out = header.join(",");
        out.push('\n');
        for row in rows {
            let line: Vec<String> = header
                .iter()
                .map(|h| {
                    row.iter()
                        .find(|(k, _)| k == h)
                        .map_or_else(|| default.to_string(), |(_, v)| v.clone())
                })
                .collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }

    fn stats(ops: &[&str]) -> Vec<String> {
        ops.iter()
            .flat_map(|op| {
                ["min", "max", "mean", "median", "std"].map(|s| format!("time_stats.{op}.{s}"))
            })
            .collect()
    }

    const MLP_OPS: [&str; 10] = [
        "emb",
        "input_layernorm",
        "attn_pre_proj",
        "attn_rope",
        "attn_post_proj",
        "post_attention_layernorm",
        "mlp_up_proj",
        "mlp_act",
        "mlp_down_proj",
        "add",
    ];

    /// An mlp.csv row of the tiny model: every op's median is `scale × (op index + 1) ×
    /// tokens`.
    fn mlp_row(tokens: u32, tp: u32, n_head: u32, scale: f64) -> Vec<(&'static str, String)> {
        let mut row = vec![
            ("n_head", n_head.to_string()),
            ("n_kv_head", "2".into()),
            ("n_embd", "64".into()),
            ("n_expanded_embd", "128".into()),
            ("vocab_size", "1000".into()),
            ("use_gated_mlp", "True".into()),
            ("num_tokens", tokens.to_string()),
            ("num_tensor_parallel_workers", tp.to_string()),
        ];
        for (i, op) in MLP_OPS.iter().enumerate() {
            let name: &'static str = Box::leak(format!("time_stats.{op}.median").into_boxed_str());
            row.push((
                name,
                (scale * (i + 1) as f64 * f64::from(tokens)).to_string(),
            ));
        }
        row
    }

    fn mlp_header(ops: &[&str]) -> Vec<String> {
        let mut h = stats(ops);
        for c in [
            "n_head",
            "n_kv_head",
            "n_embd",
            "n_expanded_embd",
            "vocab_size",
            "use_gated_mlp",
            "num_tokens",
            "num_tensor_parallel_workers",
        ] {
            h.push(c.into());
        }
        h
    }

    fn attention_tail() -> Vec<&'static str> {
        vec![
            "n_embd",
            "n_q_head",
            "n_kv_head",
            "block_size",
            "num_tensor_parallel_workers",
            "max_model_len",
            "batch_size",
            "prefill_chunk_size",
            "kv_cache_size",
            "is_prefill",
            "attention_backend",
        ]
    }

    /// Current (36-column) attention.csv header.
    fn current_attention_header() -> Vec<String> {
        let mut h = stats(&[
            "attn_input_reshape",
            "attn_kv_cache_save",
            "attn_prefill",
            "attn_decode",
            "attn_output_reshape",
        ]);
        h.extend(attention_tail().into_iter().map(String::from));
        h
    }

    /// Historic (32-column, May 2024) attention.csv header.
    fn historic_attention_header() -> Vec<String> {
        let mut h = stats(&[
            "attn_input_reshape",
            "attn_decode",
            "attn_output_reshape",
            "attn_prefill",
        ]);
        h.extend(attention_tail().into_iter().map(String::from));
        h.push("profile_method".into());
        h
    }

    /// Synthetic attention "physics": decode `0.01 + 1e-5·b·kv`, prefill
    /// `0.02 + 1e-7·c·(kv + c)`, kv-cache save `1e-3·tokens`.
    fn decode_time(b: u32, kv: u32) -> f64 {
        0.01 + 1e-5 * f64::from(b) * f64::from(kv)
    }
    fn prefill_time(c: u32, kv: u32) -> f64 {
        0.02 + 1e-7 * f64::from(c) * f64::from(kv + c)
    }

    fn attention_row(
        b: u32,
        c: u32,
        kv: u32,
        block: u32,
        tp: u32,
        with_save: bool,
    ) -> Vec<(&'static str, String)> {
        let mut row = vec![
            ("n_embd", "64".to_string()),
            ("n_q_head", "4".into()),
            ("n_kv_head", "2".into()),
            ("block_size", block.to_string()),
            ("num_tensor_parallel_workers", tp.to_string()),
            ("max_model_len", "512".into()),
            ("batch_size", b.to_string()),
            ("prefill_chunk_size", c.to_string()),
            ("kv_cache_size", kv.to_string()),
            ("is_prefill", if c > 0 { "True" } else { "False" }.into()),
            (
                "attention_backend",
                "AttentionBackend.FLASH_ATTENTION".into(),
            ),
            ("profile_method", "ProfileMethod.KINETO".into()),
        ];
        if c > 0 {
            row.push((
                "time_stats.attn_prefill.median",
                prefill_time(c, kv).to_string(),
            ));
        } else {
            row.push((
                "time_stats.attn_decode.median",
                decode_time(b, kv).to_string(),
            ));
        }
        if with_save {
            let t = f64::from(b.max(c));
            row.push((
                "time_stats.attn_kv_cache_save.median",
                (1e-3 * t).to_string(),
            ));
        }
        row
    }

    /// Attention rows on a triangle `c + kv ≤ 512` (prefill) and a full decode grid.
    fn attention_rows(block: u32, tp: u32, with_save: bool) -> Vec<Vec<(&'static str, String)>> {
        let mut rows = Vec::new();
        for b in [1, 2, 4, 8] {
            for kv in [32, 64, 128, 256, 448] {
                rows.push(attention_row(b, 0, kv, block, tp, with_save));
            }
        }
        for c in [64, 128, 256, 512] {
            for kv in [0, 64, 128, 256, 448] {
                if c + kv <= 512 {
                    rows.push(attention_row(1, c, kv, block, tp, with_save));
                }
            }
        }
        rows
    }

    fn collective_header(op: &str) -> Vec<String> {
        let mut h = vec![String::new()];
        h.extend(stats(&[op]));
        for c in [
            "rank",
            "num_workers",
            "size",
            "collective",
            "devices_per_node",
            "max_devices_per_node",
        ] {
            h.push(c.into());
        }
        h
    }

    /// A collective row: median `base + 1e-6·size` at `size` bytes.
    fn collective_row(
        index: usize,
        op: &'static str,
        workers: u32,
        per_node: u32,
        size: u64,
        base: f64,
    ) -> Vec<(&'static str, String)> {
        let median: &'static str = Box::leak(format!("time_stats.{op}.median").into_boxed_str());
        vec![
            ("", index.to_string()),
            (median, (base + 1e-6 * size as f64).to_string()),
            ("rank", "0".into()),
            ("num_workers", workers.to_string()),
            ("size", size.to_string()),
            ("collective", op.into()),
            ("devices_per_node", per_node.to_string()),
            ("max_devices_per_node", "4".into()),
        ]
    }

    struct Fixture {
        dir: PathBuf,
        files: ProfileFiles,
    }

    /// Writes a complete synthetic profile set; `historic` picks the attention layout.
    fn fixture(name: &str, historic: bool) -> Fixture {
        let dir = temp_dir(name);
        // mlp: tokens 1, 8, 16, 32 for TP1 and TP2, plus decoy rows of another model, plus a
        // duplicate row.
        let mut rows = Vec::new();
        for t in [1, 8, 16, 32] {
            rows.push(mlp_row(t, 1, 4, 1e-3));
            rows.push(mlp_row(t, 2, 4, 2e-3));
            rows.push(mlp_row(t, 1, 8, 5.0));
        }
        rows.push(mlp_row(8, 1, 4, 1e-3));
        std::fs::write(
            dir.join("mlp.csv"),
            csv_text(&mlp_header(&MLP_OPS), &rows, "0.0"),
        )
        .unwrap();
        let (header, default) = if historic {
            (historic_attention_header(), "")
        } else {
            (current_attention_header(), "0.0")
        };
        let mut rows = attention_rows(16, 1, !historic);
        rows.extend(attention_rows(16, 2, !historic));
        rows.extend(attention_rows(32, 1, !historic).into_iter().map(|mut r| {
            // Decoys at another block size: times ×100.
            for (k, v) in r.iter_mut() {
                if k.starts_with("time_stats") {
                    *v = (v.parse::<f64>().unwrap() * 100.0).to_string();
                }
            }
            r
        }));
        std::fs::write(dir.join("attention.csv"), csv_text(&header, &rows, default)).unwrap();

        let mut ar = Vec::new();
        for (i, size) in [1280u64, 12800, 128_000].into_iter().enumerate() {
            ar.push(collective_row(3 * i, "all_reduce", 2, 2, size, 0.01));
            ar.push(collective_row(3 * i + 1, "all_reduce", 4, 4, size, 1.0));
            ar.push(collective_row(3 * i + 2, "all_reduce", 2, 1, size, 2.0));
        }
        std::fs::write(
            dir.join("all_reduce.csv"),
            csv_text(&collective_header("all_reduce"), &ar, "0.0"),
        )
        .unwrap();
        let mut sr = Vec::new();
        for (i, size) in [1280u64, 12800, 128_000].into_iter().enumerate() {
            sr.push(collective_row(2 * i, "send_recv", 2, 2, size, 0.02));
            sr.push(collective_row(2 * i + 1, "send_recv", 2, 1, size, 0.5));
        }
        std::fs::write(
            dir.join("send_recv.csv"),
            csv_text(&collective_header("send_recv"), &sr, "0.0"),
        )
        .unwrap();
        let files = ProfileFiles {
            mlp: dir.join("mlp.csv"),
            attention: dir.join("attention.csv"),
            all_reduce: Some(dir.join("all_reduce.csv")),
            send_recv: Some(dir.join("send_recv.csv")),
        };
        Fixture { dir, files }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    // -----------------------------------------------------------------------------------------
    // Synthetic tests

    #[test]
    fn mlp_rows_are_filtered_by_model_and_tp_and_interpolated() {
        let fx = fixture("mlp", false);
        let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
        // attn_pre_proj is the 3rd column group: 3e-3 per token on TP1.
        for t in [1, 8, 12, 20, 32] {
            let want = 3e-3 * f64::from(t);
            assert!(
                close(p.linear(LinearOp::AttnPreProj, t).unwrap(), want),
                "{t}"
            );
        }
        // Beyond the last profiled token count the value is held.
        assert!(close(
            p.linear(LinearOp::AttnPreProj, 4096).unwrap(),
            3e-3 * 32.0
        ));
        assert!(close(p.linear(LinearOp::Add, 16).unwrap(), 10e-3 * 16.0));
        let p2 = OpProfile::load(&fx.files, &tiny_model(), 2, 1, 16, &node(4)).unwrap();
        assert!(close(
            p2.linear(LinearOp::MlpDownProj, 8).unwrap(),
            9.0 * 2e-3 * 8.0
        ));
    }

    #[test]
    fn missing_norm_and_add_columns_read_as_zero() {
        let dir = temp_dir("mlp-no-norms");
        let ops: Vec<&str> = MLP_OPS
            .iter()
            .copied()
            .filter(|op| !op.contains("norm") && *op != "add")
            .collect();
        let rows: Vec<_> = [1, 8].iter().map(|&t| mlp_row(t, 1, 4, 1e-3)).collect();
        std::fs::write(
            dir.join("mlp.csv"),
            csv_text(&mlp_header(&ops), &rows, "0.0"),
        )
        .unwrap();
        let fx = fixture("mlp-no-norms-attn", false);
        let files = ProfileFiles {
            mlp: dir.join("mlp.csv"),
            ..fx.files.clone()
        };
        let p = OpProfile::load(&files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
        assert_eq!(p.linear(LinearOp::InputLayernorm, 8).unwrap(), 0.0);
        assert_eq!(p.linear(LinearOp::Add, 8).unwrap(), 0.0);
        assert!(p.linear(LinearOp::MlpUpProj, 8).unwrap() > 0.0);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn check_attention(p: &OpProfile) {
        // Decode: exact on the profiled grid, bilinear inside, clamped at the kv edges.
        assert!(close(p.attn_decode(4, 128).unwrap(), decode_time(4, 128)));
        let mid = p.attn_decode(3, 96).unwrap();
        let want =
            (decode_time(2, 64) + decode_time(2, 128) + decode_time(4, 64) + decode_time(4, 128))
                / 4.0;
        assert!(close(mid, want), "{mid} vs {want}");
        assert!(close(p.attn_decode(1, 0).unwrap(), decode_time(1, 32)));
        assert!(close(p.attn_decode(8, 4096).unwrap(), decode_time(8, 448)));
        assert!(close(p.attn_decode(128, 64).unwrap(), decode_time(8, 64)));
        // Prefill: exact at profiled points, linear in chunk² between chunk rows.
        assert!(close(
            p.attn_prefill(64, 128 * 128).unwrap(),
            prefill_time(128, 64)
        ));
        let c2 = 100u64 * 100;
        let f = (c2 as f64 - 64.0 * 64.0) / (128.0 * 128.0 - 64.0 * 64.0);
        let want = prefill_time(64, 0) + f * (prefill_time(128, 0) - prefill_time(64, 0));
        assert!(close(p.attn_prefill(0, c2).unwrap(), want));
        // Below the smallest chunk: the smallest chunk's row.
        assert!(close(
            p.attn_prefill(128, 1).unwrap(),
            prefill_time(64, 128)
        ));
        // Outside the profiled triangle: the row's value at its largest profiled kv.
        assert!(close(
            p.attn_prefill(4096, 256 * 256).unwrap(),
            prefill_time(256, 256)
        ));
        assert!(close(
            p.attn_prefill(300, 512 * 512).unwrap(),
            prefill_time(512, 0)
        ));
        assert!(close(
            p.attn_prefill(0, 4096 * 4096).unwrap(),
            prefill_time(512, 0)
        ));
    }

    #[test]
    fn current_attention_format_is_read_and_interpolated() {
        let fx = fixture("attn-current", false);
        let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
        check_attention(&p);
        // kv-cache save over max(chunk, batch), averaged over all rows of the same count.
        assert!(close(p.kv_cache_save(4).unwrap(), 4e-3));
        assert!(close(p.kv_cache_save(96).unwrap(), 96e-3));
        assert!(close(p.kv_cache_save(4096).unwrap(), 512e-3));
    }

    #[test]
    fn historic_attention_format_with_empty_cells_is_read() {
        let fx = fixture("attn-historic", true);
        let text = std::fs::read_to_string(&fx.files.attention).unwrap();
        assert_eq!(text.lines().next().unwrap().split(',').count(), 32);
        assert!(
            text.lines().nth(1).unwrap().contains(",,"),
            "empty cells expected"
        );
        let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
        check_attention(&p);
        // No attn_kv_cache_save column: 0, as in Vidur.
        assert_eq!(p.kv_cache_save(100).unwrap(), 0.0);
    }

    #[test]
    fn block_size_selects_attention_rows() {
        let fx = fixture("attn-block", false);
        let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 32, &node(4)).unwrap();
        assert!(close(
            p.attn_decode(4, 128).unwrap(),
            100.0 * decode_time(4, 128)
        ));
        let e = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 8, &node(4)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("attention.csv") && msg.contains("block_size == 8"),
            "{msg}"
        );
    }

    #[test]
    fn collectives_are_filtered_and_converted_to_tokens() {
        let fx = fixture("net", false);
        // tp 2 on a 4-device node: all_reduce (2 workers, 2 per node); pp 2 keeps tp × pp on
        // one node, so send_recv uses devices_per_node == 2.
        let p = OpProfile::load(&fx.files, &tiny_model(), 2, 2, 16, &node(4)).unwrap();
        // 128 bytes per token (embedding 64 × 2 bytes): 1280 bytes = 10 tokens.
        assert!(close(p.all_reduce(10).unwrap(), 0.01 + 1e-6 * 1280.0));
        assert!(close(p.all_reduce(1).unwrap(), 0.01 + 1e-6 * 1280.0));
        let mid = 0.01 + 1e-6 * (1280.0 + 12800.0) / 2.0;
        assert!(close(p.all_reduce(55).unwrap(), mid));
        assert!(close(p.all_reduce(4096).unwrap(), 0.01 + 1e-6 * 128_000.0));
        assert!(close(p.send_recv(100).unwrap(), 0.02 + 1e-6 * 12800.0));
        // tp 2 × pp 2 on 2-device nodes is multi-node: devices_per_node == 1 rows.
        let p = OpProfile::load(&fx.files, &tiny_model(), 2, 2, 16, &node(2)).unwrap();
        assert!(close(p.send_recv(100).unwrap(), 0.5 + 1e-6 * 12800.0));
        // TP1/PP1 reads neither and answers neither.
        let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
        assert!(matches!(p.all_reduce(8), Err(Error::OutOfRange { .. })));
        assert!(matches!(p.send_recv(8), Err(Error::OutOfRange { .. })));
    }

    #[test]
    fn network_needs_and_layout_errors() {
        let fx = fixture("net-errors", false);
        let no_net = ProfileFiles {
            all_reduce: None,
            send_recv: None,
            ..fx.files.clone()
        };
        let e = OpProfile::load(&no_net, &tiny_model(), 2, 1, 16, &node(4)).unwrap_err();
        assert!(e.to_string().contains("all_reduce"), "{e}");
        let e = OpProfile::load(&no_net, &tiny_model(), 1, 2, 16, &node(4)).unwrap_err();
        assert!(e.to_string().contains("send_recv"), "{e}");
        // 3 workers on 2-device nodes: neither fewer nor a multiple.
        let e = OpProfile::load(&fx.files, &tiny_model(), 1, 3, 16, &node(2)).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        // A file without all-reduce rows (the send/recv profile passed by mistake).
        let wrong = ProfileFiles {
            all_reduce: fx.files.send_recv.clone(),
            ..fx.files.clone()
        };
        let e = OpProfile::load(&wrong, &tiny_model(), 2, 1, 16, &node(4)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("send_recv.csv")
                && msg.contains("collective == all_reduce")
                && msg.contains("num_workers == 2")
                && msg.contains("devices_per_node == 2"),
            "{msg}"
        );
    }

    #[test]
    fn empty_filter_names_file_and_values() {
        let fx = fixture("filter", false);
        let model = ModelSpec {
            mlp_hidden_dim: 999,
            ..tiny_model()
        };
        let e = OpProfile::load(&fx.files, &model, 1, 1, 16, &node(4)).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Config(_)));
        assert!(
            msg.contains("mlp.csv") && msg.contains("n_expanded_embd == 999"),
            "{msg}"
        );
        let model = ModelSpec {
            use_gated_mlp: false,
            ..tiny_model()
        };
        let msg = OpProfile::load(&fx.files, &model, 1, 1, 16, &node(4))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("use_gated_mlp == false"), "{msg}");
    }

    #[test]
    fn malformed_number_reports_file_and_line() {
        let fx = fixture("malformed", false);
        let text = std::fs::read_to_string(&fx.files.attention).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        // Line 4 (header is line 1): break its kv_cache_size.
        let col = current_attention_header()
            .iter()
            .position(|h| h == "kv_cache_size")
            .unwrap();
        let mut fields: Vec<&str> = lines[3].split(',').collect();
        fields[col] = "12x";
        lines[3] = fields.join(",");
        std::fs::write(&fx.files.attention, lines.join("\n") + "\n").unwrap();
        let e = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap_err();
        match &e {
            Error::Csv {
                path,
                line,
                message,
            } => {
                assert_eq!(path, &fx.files.attention);
                assert_eq!(*line, 4);
                assert!(
                    message.contains("kv_cache_size") && message.contains("12x"),
                    "{e}"
                );
            }
            _ => panic!("expected a CSV error, got {e}"),
        }
        assert!(e.to_string().contains("attention.csv:4:"), "{e}");
    }

    #[test]
    fn empty_target_cell_in_a_used_row_is_an_error() {
        let fx = fixture("empty-target", true);
        let text = std::fs::read_to_string(&fx.files.attention).unwrap();
        let col = historic_attention_header()
            .iter()
            .position(|h| h == "time_stats.attn_decode.median")
            .unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut fields: Vec<&str> = lines[1].split(',').collect();
        fields[col] = "";
        lines[1] = fields.join(",");
        std::fs::write(&fx.files.attention, lines.join("\n") + "\n").unwrap();
        let e = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap_err();
        assert!(matches!(e, Error::Csv { line: 2, .. }), "{e}");
    }

    #[test]
    fn missing_column_and_missing_file_are_errors() {
        let fx = fixture("missing", false);
        let text = std::fs::read_to_string(&fx.files.mlp).unwrap();
        std::fs::write(&fx.files.mlp, text.replacen("vocab_size", "vocab", 1)).unwrap();
        let e = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap_err();
        assert!(matches!(e, Error::Csv { line: 1, .. }), "{e}");
        assert!(e.to_string().contains("vocab_size"), "{e}");
        let files = ProfileFiles {
            mlp: fx.dir.join("nope.csv"),
            ..fx.files.clone()
        };
        let e = OpProfile::load(&files, &tiny_model(), 1, 1, 16, &node(4)).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
    }

    #[test]
    fn queries_outside_the_grid_are_out_of_range() {
        let fx = fixture("range", false);
        let p = OpProfile::load(&fx.files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
        let oor = |r: Result<f64>| matches!(r, Err(Error::OutOfRange { .. }));
        assert!(oor(p.linear(LinearOp::Add, 0)));
        assert!(oor(p.linear(LinearOp::Add, 4097)));
        assert!(oor(p.kv_cache_save(4097)));
        assert!(oor(p.attn_decode(0, 64)));
        assert!(oor(p.attn_decode(129, 64)));
        assert!(oor(p.attn_decode(1, 4160)));
        assert!(oor(p.attn_prefill(0, 0)));
        assert!(oor(p.attn_prefill(0, 4097 * 4097)));
        assert!(oor(p.attn_prefill(4160, 1)));
        assert!(p.attn_prefill(4096, 4096 * 4096).is_ok());
        let wide = p.with_grid(PredictionGrid {
            max_tokens: 4096 * 128,
            ..PredictionGrid::default()
        });
        assert!(wide.linear(LinearOp::Add, 10_000).is_ok());
    }

    /// A second [`OpTimes`] that is the first scaled by `factor`, except zeros.
    struct Scaled<'a>(&'a OpProfile, f64);

    impl OpTimes for Scaled<'_> {
        fn linear(&self, op: LinearOp, t: u32) -> Result<f64> {
            Ok(self.0.linear(op, t)? * self.1)
        }
        fn kv_cache_save(&self, t: u32) -> Result<f64> {
            Ok(self.0.kv_cache_save(t)? * self.1)
        }
        fn attn_decode(&self, b: u32, kv: u32) -> Result<f64> {
            Ok(self.0.attn_decode(b, kv)? * self.1)
        }
        fn attn_prefill(&self, kv: u32, c: u64) -> Result<f64> {
            Ok(self.0.attn_prefill(kv, c)? * self.1)
        }
        fn all_reduce(&self, t: u32) -> Result<f64> {
            Ok(self.0.all_reduce(t)? * self.1)
        }
        fn send_recv(&self, t: u32) -> Result<f64> {
            Ok(self.0.send_recv(t)? * self.1)
        }
    }

    #[test]
    fn grid_mape_scores_a_uniform_error_and_skips_zero_references() {
        let fx = fixture("mape", true);
        let p = OpProfile::load(&fx.files, &tiny_model(), 2, 1, 16, &node(4)).unwrap();
        let grid = PredictionGrid {
            max_tokens: 64,
            max_batch_size: 4,
            max_kv_cache_size: 256,
            kv_granularity: 64,
            max_prefill_chunk_size: 128,
        };
        let r = grid_mape(&Scaled(&p, 1.05), &p, &grid, 2, 1).unwrap();
        assert_eq!(
            r.ops.len(),
            13,
            "9 linear, kv save, decode, prefill, all-reduce"
        );
        assert!(r.op(GridOp::SendRecv).is_none());
        let decode = r.op(GridOp::AttnDecode).unwrap();
        assert_eq!(decode.points, 4 * 5);
        assert!((decode.mape().unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(r.op(GridOp::AttnPrefill).unwrap().points, 5 * 128);
        // Historic layout: kv-cache save is 0 everywhere, so it has no MAPE.
        let save = r.op(GridOp::KvCacheSave).unwrap();
        assert_eq!(
            (save.points, save.zero_reference, save.zero_mismatches),
            (0, 64, 0)
        );
        assert_eq!(save.mape(), None);
        assert!((r.overall().unwrap() - 5.0).abs() < 1e-9);
        assert!((r.pooled().unwrap() - 5.0).abs() < 1e-9);
        let table = r.to_string();
        assert!(
            table.contains("attn_prefill") && table.contains("5.000"),
            "{table}"
        );
        assert!(table.contains("n/a"), "{table}");
        // Identical sources: 0 %.
        let r = grid_mape(&p, &p, &grid, 1, 1).unwrap();
        assert_eq!(r.overall(), Some(0.0));
    }

    #[test]
    fn dense_prefill_grid_is_fast() {
        // A profile shaped like the real one: 81 chunk rows × up to 80 kv values.
        let dir = temp_dir("speed");
        let fx = fixture("speed-base", false);
        let mut rows = Vec::new();
        let chunks: Vec<u32> = (2..=128).map(|i| i * 32).filter(|c| *c <= 4096).collect();
        for &c in chunks.iter().step_by(2) {
            for kv in (0..4096).step_by(64) {
                if c + kv <= 4096 {
                    rows.push(attention_row(1, c, kv, 16, 1, true));
                }
            }
        }
        for b in 1..=128 {
            for kv in (32..4096).step_by(64) {
                rows.push(attention_row(b, 0, kv, 16, 1, true));
            }
        }
        let path = dir.join("attention.csv");
        std::fs::write(&path, csv_text(&current_attention_header(), &rows, "0.0")).unwrap();
        let files = ProfileFiles {
            attention: path,
            ..fx.files.clone()
        };
        let p = OpProfile::load(&files, &tiny_model(), 1, 1, 16, &node(4)).unwrap();
        let start = std::time::Instant::now();
        let mut sum = 0.0;
        for kv in (0..=4096).step_by(64) {
            for c in 1..=4096u64 {
                sum += p.attn_prefill(kv, c * c).unwrap();
            }
        }
        let took = start.elapsed();
        println!("65 x 4096 prefill grid filled in {took:?} (sum {sum:.3})");
        assert!(sum > 0.0);
        if !cfg!(debug_assertions) {
            assert!(took.as_secs_f64() < 0.5, "{took:?}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
