//! The assertion macros: thin wrappers over [`check`](crate::fidelity::check) that panic with
//! the [`Verdict`](crate::fidelity::Verdict)'s table when a check fails or is refused, and
//! return the verdict otherwise.
//!
//! Grammar shared by all of them: a statistic (`p50`, `p90`, `p95`, `p99`, `mean`), a
//! relative tolerance (`10%`), an optional absolute floor (`10% or 2ms`; units `ms`, `us`,
//! `s`, checked at compile time), then optional trailing options, each a method of
//! [`AssertOptions`](crate::fidelity::AssertOptions): `noise_floor(&repeats)`,
//! `def(MetricDef::Vidur)`, `warmup(10)`, `window(5.0, 60.0)`, `resamples(200)`, `seed(7)`,
//! `allow_workload_mismatch(true)`, `allow_few_samples(true)`.
//!
//! Mistakes do not compile: an unknown statistic, or a duration without a known unit.
//!
//! ```compile_fail
//! # let run = simfid::fixture::Run { meta: simfid::fixture::RunMeta::new(simfid::fixture::Source::Sim, "m"), requests: vec![] };
//! simfid::assert_ttft_within!(run, run, p42, 10%);
//! ```
//!
//! ```compile_fail
//! # let run = simfid::fixture::Run { meta: simfid::fixture::RunMeta::new(simfid::fixture::Source::Sim, "m"), requests: vec![] };
//! simfid::assert_ttft_within!(run, run, p99, 10% or 2min);
//! ```
//!
//! ```
//! # let run = simfid::fixture::Run { meta: simfid::fixture::RunMeta::new(simfid::fixture::Source::Sim, "m"), requests: vec![] };
//! // The same with valid units compiles (and, on an empty run, panics with the reason).
//! let r = std::panic::catch_unwind(|| {
//!     simfid::assert_ttft_within!(run, run, p99, 10% or 2ms);
//! });
//! assert!(r.is_err());
//! ```

/// Asserts that the simulated TTFT statistic is within a tolerance of the real one.
///
/// `assert_ttft_within!(sim, real, p99, 10%)`; `sim` and `real` are anything that is
/// `AsRef<Run>` (a `Run` or a `&Run`). Optional: an absolute floor (`10% or 2ms`) and options
/// (`, noise_floor(&repeats)`, see the [module docs](crate::fidelity::macros)).
///
/// ```
/// use simfid::fixture::{Chunk, RequestRun, Run, RunMeta, Source};
/// // 40 requests: TTFT 100 ms in the real run, 104 ms in the simulation.
/// let run = |source, ttft: f64| Run {
///     meta: RunMeta::new(source, "demo"),
///     requests: (0..40)
///         .map(|i| RequestRun {
///             id: i,
///             scheduled: i as f64,
///             sent: Some(i as f64),
///             prompt_tokens: 100,
///             output_tokens: 2,
///             usage_prompt_tokens: None,
///             usage_completion_tokens: None,
///             chunks: vec![
///                 Chunk { t: i as f64 + ttft, n: 1 },
///                 Chunk { t: i as f64 + ttft + 0.01, n: 1 },
///             ],
///             finish_reason: None,
///             error: None,
///             warnings: Vec::new(),
///         })
///         .collect(),
/// };
/// let (real, sim) = (run(Source::Real, 0.100), run(Source::Sim, 0.104));
/// simfid::assert_ttft_within!(sim, real, p50, 5%);
/// simfid::assert_ttft_within!(&sim, &real, mean, 1% or 5ms);
/// ```
#[macro_export]
macro_rules! assert_ttft_within {
    ($sim:expr, $real:expr, $($rest:tt)+) => {
        $crate::__fidelity_within!($crate::fidelity::Metric::Ttft, $sim, $real, $($rest)+)
    };
}

/// Asserts that the simulated ITL statistic is within a tolerance of the real one
/// (`assert_itl_within!(sim, real, p50, 5%)`; same grammar as [`assert_ttft_within!`]).
#[macro_export]
macro_rules! assert_itl_within {
    ($sim:expr, $real:expr, $($rest:tt)+) => {
        $crate::__fidelity_within!($crate::fidelity::Metric::Itl, $sim, $real, $($rest)+)
    };
}

/// Asserts that the simulated TPOT statistic is within a tolerance of the real one
/// (`assert_tpot_within!(sim, real, p90, 5% or 1ms)`; same grammar as
/// [`assert_ttft_within!`]).
#[macro_export]
macro_rules! assert_tpot_within {
    ($sim:expr, $real:expr, $($rest:tt)+) => {
        $crate::__fidelity_within!($crate::fidelity::Metric::Tpot, $sim, $real, $($rest)+)
    };
}

/// Asserts that the simulated end-to-end latency statistic is within a tolerance of the real
/// one (`assert_e2e_within!(sim, real, p99, 10%)`; same grammar as [`assert_ttft_within!`]).
#[macro_export]
macro_rules! assert_e2e_within {
    ($sim:expr, $real:expr, $($rest:tt)+) => {
        $crate::__fidelity_within!($crate::fidelity::Metric::E2e, $sim, $real, $($rest)+)
    };
}

/// Asserts several metrics at once and prints one table for all of them.
///
/// ```
/// # use simfid::fixture::{Chunk, RequestRun, Run, RunMeta, Source};
/// # // 1000 requests with a TTFT of `ttft` s and 4 tokens 20 ms apart.
/// # let run = |ttft: f64| Run {
/// #     meta: RunMeta::new(Source::Real, "demo"),
/// #     requests: (0..1000)
/// #         .map(|i| RequestRun {
/// #             id: i,
/// #             scheduled: i as f64,
/// #             sent: Some(i as f64),
/// #             prompt_tokens: 100,
/// #             output_tokens: 4,
/// #             usage_prompt_tokens: None,
/// #             usage_completion_tokens: None,
/// #             chunks: (0..4)
/// #                 .map(|k| Chunk { t: i as f64 + ttft * (1.0 + (i % 10) as f64 / 10.0) + 0.02 * k as f64, n: 1 })
/// #                 .collect(),
/// #             finish_reason: None,
/// #             error: None,
/// #             warnings: Vec::new(),
/// #         })
/// #         .collect(),
/// # };
/// let (real, sim) = (run(0.100), run(0.103));
/// let repeats = [run(0.100), run(0.104)];
/// let verdict = simfid::assert_fidelity!(sim, real, {
///     ttft: p50 5%, p99 10% or 5ms;
///     itl: p50 5%;
///     tpot: mean 5%;
///     e2e: p90 10%;
/// }, noise_floor(&repeats));
/// assert!(verdict.passed());
/// ```
/// Metrics: `ttft`, `itl`, `tpot`, `e2e`, `e2e_norm`, `tbt`, `sched_delay`. Returns the
/// [`Verdict`](crate::fidelity::Verdict); panics with its table when any check fails or is
/// refused.
#[macro_export]
macro_rules! assert_fidelity {
    ($sim:expr, $real:expr, {
        $( $metric:ident : $( $q:ident $pct:literal % $(or $abs:tt)? ),+ );+ $(;)?
    } $(, $opt:ident ( $($val:expr),* ))* $(,)?) => {{
        let criteria = [ $( $( $crate::fidelity::Criterion::new(
            $crate::__fidelity_metric!($metric),
            $crate::__fidelity_stat!($q),
            $crate::__fidelity_tol!($pct $(, $abs)?),
        ) ),+ ),+ ];
        $crate::__fidelity_run!($sim, $real, criteria $(, $opt ( $($val),* ))*)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __fidelity_within {
    ($metric:expr, $sim:expr, $real:expr, $q:ident, $pct:literal % $(or $abs:tt)?
        $(, $opt:ident ( $($val:expr),* ))* $(,)?) => {{
        let criteria = [$crate::fidelity::Criterion::new(
            $metric,
            $crate::__fidelity_stat!($q),
            $crate::__fidelity_tol!($pct $(, $abs)?),
        )];
        $crate::__fidelity_run!($sim, $real, criteria $(, $opt ( $($val),* ))*)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __fidelity_run {
    ($sim:expr, $real:expr, $criteria:ident $(, $opt:ident ( $($val:expr),* ))*) => {{
        let opts = $crate::fidelity::AssertOptions::default() $( .$opt( $($val),* ) )*;
        let verdict = $crate::fidelity::check(
            ::core::convert::AsRef::<$crate::fixture::Run>::as_ref(&$sim),
            ::core::convert::AsRef::<$crate::fixture::Run>::as_ref(&$real),
            &$criteria,
            &opts,
        );
        if !verdict.passed() {
            ::core::panic!("{}", verdict);
        }
        verdict
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __fidelity_tol {
    ($pct:literal) => {
        $crate::fidelity::Tolerance::pct($pct as f64)
    };
    ($pct:literal, $abs:tt) => {
        $crate::fidelity::Tolerance::pct($pct as f64)
            .or_ms(const { $crate::fidelity::parse_ms(::core::stringify!($abs)) })
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __fidelity_stat {
    (p50) => {
        $crate::fidelity::Stat::P50
    };
    (p90) => {
        $crate::fidelity::Stat::P90
    };
    (p95) => {
        $crate::fidelity::Stat::P95
    };
    (p99) => {
        $crate::fidelity::Stat::P99
    };
    (mean) => {
        $crate::fidelity::Stat::Mean
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __fidelity_metric {
    (ttft) => {
        $crate::fidelity::Metric::Ttft
    };
    (itl) => {
        $crate::fidelity::Metric::Itl
    };
    (tpot) => {
        $crate::fidelity::Metric::Tpot
    };
    (e2e) => {
        $crate::fidelity::Metric::E2e
    };
    (e2e_norm) => {
        $crate::fidelity::Metric::E2eNorm
    };
    (tbt) => {
        $crate::fidelity::Metric::Tbt
    };
    (sched_delay) => {
        $crate::fidelity::Metric::SchedDelay
    };
}
