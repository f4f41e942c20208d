//! Operator times from Vidur-format operator profiles, with simfid's own interpolation.
//!
//! [`OpProfile`] reads the four profile files Vidur trains its execution-time predictor on
//! ([`ProfileFiles`]: `mlp.csv`, `attention.csv` and, for tensor or pipeline parallelism,
//! `all_reduce.csv` / `send_recv.csv`), keeps the rows Vidur would keep for a model and
//! parallel layout (as Vidur's `vidur/execution_time_predictor/sklearn_execution_time_predictor.py` does), and answers [`OpTimes`](crate::exec::OpTimes) queries by interpolating the profiled
//! medians. [`grid_mape`] measures how far any two `OpTimes` are apart over Vidur's
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
//! A filter that keeps no row is an [`Error::Exec`](crate::Error::Exec) naming the file and the values filtered
//! on; a malformed number is an [`Error::Csv`](crate::Error::Csv) with the file and the 1-based line (the header
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
//! `llama*_within_3_percent_of_vidur` tests in `cli/tests/integration/vidur_profile.rs`;
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
//! tokens, batch 1..=128, kv 0..=4096, chunk 1..=4096) and returns [`Error::OutOfRange`](crate::Error::OutOfRange)
//! outside it, as Vidur's tables raise `KeyError`. Inside the box any key is answered, not only
//! the keys Vidur tabulates (kv need not be a multiple of 64, `chunk_sq` need not be a square).
//! When a [`VidurModel`](crate::exec::vidur::VidurModel) is configured with a wider grid (Orca's
//! token range), give the profile the same one:
//! `profile.with_grid(PredictionGrid::from(&cfg))`.
//!
//! # Layout
//!
//! `table` reads a profile CSV (duplicates dropped, typed cells, errors naming file and line);
//! `read` keeps the rows Vidur keeps from each of the four files; `interpolate` holds the
//! piecewise-linear curves and ragged-grid surfaces; `op_profile` puts them together as
//! [`OpProfile`] and answers [`OpTimes`](crate::exec::OpTimes) queries; `mape` compares two
//! sources over the grid.

mod interpolate;
mod mape;
mod op_profile;
mod read;
mod table;
#[cfg(test)]
mod tests;

pub use mape::{GridOp, MapeReport, OpMape, grid_mape};
pub use op_profile::{OpProfile, PredictionGrid, ProfileFiles};
