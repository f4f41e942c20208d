//! Vidur's command-line flags (its flat-dataclass names, `vidur/config/flat_dataclass.py`), parsed as Vidur's argparse
//! would: `--name value`, `--name=value`, `--bool` / `--no-bool`, lists as several values.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value,
    Bool,
    List,
}

const SCHEDULERS: [&str; 5] = ["vllm", "lightllm", "orca", "faster_transformer", "sarathi"];
const PREDICTORS: [&str; 2] = ["random_forrest", "linear_regression"];

/// Every flag of Vidur 7d47513's `SimulationConfig`.
fn known_flags() -> BTreeMap<String, Kind> {
    use Kind::*;
    let mut m = BTreeMap::new();
    let mut add = |name: String, k: Kind| {
        m.insert(name, k);
    };
    for f in ["seed", "log_level", "time_limit"] {
        add(f.into(), Value);
    }
    add("cluster_config_num_replicas".into(), Value);
    for f in [
        "model_name",
        "memory_margin_fraction",
        "num_pipeline_stages",
        "tensor_parallel_size",
        "device",
        "network_device",
    ] {
        add(format!("replica_config_{f}"), Value);
    }
    for t in [
        "global_scheduler_config_type",
        "replica_scheduler_config_type",
        "request_generator_config_type",
        "length_generator_config_type",
        "interval_generator_config_type",
        "execution_time_predictor_config_type",
    ] {
        add(t.into(), Value);
    }
    for s in SCHEDULERS {
        for f in [
            "batch_size_cap",
            "block_size",
            "watermark_blocks_fraction",
            "num_blocks",
        ] {
            add(format!("{s}_scheduler_config_{f}"), Value);
        }
    }
    add("vllm_scheduler_config_max_tokens_in_batch".into(), Value);
    add(
        "lightllm_scheduler_config_max_tokens_in_batch".into(),
        Value,
    );
    add("lightllm_scheduler_config_max_waiting_iters".into(), Value);
    add("sarathi_scheduler_config_chunk_size".into(), Value);
    for f in ["seed", "num_requests", "duration"] {
        add(format!("synthetic_request_generator_config_{f}"), Value);
    }
    for f in [
        "seed",
        "trace_file",
        "prefill_scale_factor",
        "decode_scale_factor",
        "time_scale_factor",
        "max_tokens",
    ] {
        add(format!("trace_request_generator_config_{f}"), Value);
    }
    for f in [
        "seed",
        "max_tokens",
        "trace_file",
        "prefill_scale_factor",
        "decode_scale_factor",
    ] {
        add(format!("trace_request_length_generator_config_{f}"), Value);
    }
    for f in [
        "seed",
        "max_tokens",
        "theta",
        "min_tokens",
        "prefill_to_decode_ratio",
    ] {
        add(format!("zipf_request_length_generator_config_{f}"), Value);
    }
    add("zipf_request_length_generator_config_scramble".into(), Bool);
    for f in [
        "seed",
        "max_tokens",
        "min_tokens",
        "prefill_to_decode_ratio",
    ] {
        add(
            format!("uniform_request_length_generator_config_{f}"),
            Value,
        );
    }
    for f in ["seed", "max_tokens", "prefill_tokens", "decode_tokens"] {
        add(format!("fixed_request_length_generator_config_{f}"), Value);
    }
    for f in [
        "seed",
        "trace_file",
        "start_time",
        "end_time",
        "time_scale_factor",
    ] {
        add(
            format!("trace_request_interval_generator_config_{f}"),
            Value,
        );
    }
    for f in ["seed", "qps"] {
        add(
            format!("poisson_request_interval_generator_config_{f}"),
            Value,
        );
    }
    for f in ["seed", "qps", "cv"] {
        add(
            format!("gamma_request_interval_generator_config_{f}"),
            Value,
        );
    }
    add(
        "static_request_interval_generator_config_seed".into(),
        Value,
    );
    for p in PREDICTORS {
        for f in [
            "compute_input_file",
            "attention_input_file",
            "all_reduce_input_file",
            "send_recv_input_file",
            "cpu_overhead_input_file",
            "k_fold_cv_splits",
            "kv_cache_prediction_granularity",
            "prediction_max_prefill_chunk_size",
            "prediction_max_batch_size",
            "prediction_max_tokens_per_request",
            "attention_decode_batching_overhead_fraction",
            "attention_prefill_batching_overhead_fraction",
            "nccl_cpu_launch_overhead_ms",
            "nccl_cpu_skew_overhead_per_device_ms",
            "num_training_job_threads",
        ] {
            add(format!("{p}_execution_time_predictor_config_{f}"), Value);
        }
        for f in ["no_cache", "skip_cpu_overhead_modeling"] {
            add(format!("{p}_execution_time_predictor_config_{f}"), Bool);
        }
    }
    for f in ["num_estimators", "max_depth", "min_samples_split"] {
        add(
            format!("random_forrest_execution_time_predictor_config_{f}"),
            List,
        );
    }
    for f in [
        "polynomial_degree",
        "polynomial_include_bias",
        "polynomial_interaction_only",
        "fit_intercept",
    ] {
        add(
            format!("linear_regression_execution_time_predictor_config_{f}"),
            List,
        );
    }
    for f in [
        "write_metrics",
        "write_json_trace",
        "enable_chrome_trace",
        "save_table_to_wandb",
        "store_plots",
        "store_operation_metrics",
        "store_token_completion_metrics",
        "store_request_metrics",
        "store_batch_metrics",
        "store_utilization_metrics",
        "keep_individual_batch_metrics",
    ] {
        add(format!("metrics_config_{f}"), Bool);
    }
    for f in [
        "wandb_project",
        "wandb_group",
        "wandb_run_name",
        "wandb_sweep_id",
        "wandb_run_id",
        "subsamples",
        "min_batch_index",
        "max_batch_index",
        "output_dir",
        "cache_dir",
    ] {
        add(format!("metrics_config_{f}"), Value);
    }
    // simfid's own additions.
    add("simfid_prediction_tables".into(), Value);
    add("simfid_token_times".into(), Bool);
    add("simfid_allow_stall".into(), Bool);
    m
}

/// Parsed Vidur flags: name → raw value(s) as given (last one wins, as with argparse).
#[derive(Debug, Default, Clone)]
pub struct VidurFlags {
    values: BTreeMap<String, Vec<String>>,
}

/// Closest known flag by edit distance, for "did you mean".
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    fn dist(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + (ca != *cb) as usize)
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    known
        .map(|k| (dist(name, k), k))
        .filter(|(d, _)| *d <= 6)
        .min()
        .map(|(_, k)| k)
}

impl VidurFlags {
    /// Parses `args` (without the program name and subcommand).
    pub fn parse(args: &[String]) -> Result<VidurFlags> {
        let known = known_flags();
        let mut out = VidurFlags::default();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let Some(body) = arg.strip_prefix("--") else {
                bail!("unexpected argument '{arg}' (Vidur takes only --flags)");
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            i += 1;
            if let Some(k) = known.get(&name) {
                match k {
                    Kind::Bool => {
                        if inline.is_some() {
                            bail!("--{name} is a switch and takes no value");
                        }
                        out.values.insert(name, vec!["true".into()]);
                    }
                    Kind::Value => {
                        let v = match inline {
                            Some(v) => v,
                            None => {
                                let v = args
                                    .get(i)
                                    .filter(|v| !v.starts_with("--"))
                                    .ok_or_else(|| anyhow!("--{name} needs a value"))?;
                                i += 1;
                                v.clone()
                            }
                        };
                        out.values.insert(name, vec![v]);
                    }
                    Kind::List => {
                        let mut vs: Vec<String> = inline.into_iter().collect();
                        while i < args.len() && !args[i].starts_with("--") {
                            vs.push(args[i].clone());
                            i += 1;
                        }
                        if vs.is_empty() {
                            bail!("--{name} needs one or more values");
                        }
                        out.values.insert(name, vs);
                    }
                }
                continue;
            }
            if let Some(base) = name.strip_prefix("no-")
                && known.get(base) == Some(&Kind::Bool)
            {
                out.values.insert(base.to_string(), vec!["false".into()]);
                continue;
            }
            let hint = closest(&name, known.keys())
                .map(|k| format!(" (did you mean --{k}?)"))
                .unwrap_or_default();
            bail!("unknown flag --{name}{hint}; `simfid vidur` accepts the flags of Vidur 7d47513");
        }
        Ok(out)
    }

    /// The raw value of a flag, if given.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// A string flag with a default.
    pub fn str_or(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_string()
    }

    /// A typed flag with a default; a malformed value is an error naming the flag.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| anyhow!("--{name}: cannot parse '{v}'")),
        }
    }

    /// An optional typed flag (`None` and Python's `None` both mean unset).
    pub fn opt<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.raw(name) {
            None | Some("None") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| anyhow!("--{name}: cannot parse '{v}'")),
        }
    }

    /// A boolean switch with a default.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.raw(name).map_or(default, |v| v == "true")
    }

    /// Whether a flag was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_values_bools_and_lists() {
        let f = VidurFlags::parse(&args(
            "--seed 42 --replica_config_device=a100 --metrics_config_store_token_completion_metrics \
             --no-metrics_config_store_plots --random_forrest_execution_time_predictor_config_num_estimators 250 500",
        ))
        .unwrap();
        assert_eq!(f.get::<u64>("seed", 0).unwrap(), 42);
        assert_eq!(f.raw("replica_config_device"), Some("a100"));
        assert!(f.flag("metrics_config_store_token_completion_metrics", false));
        assert!(!f.flag("metrics_config_store_plots", true));
    }

    #[test]
    fn unknown_flag_suggests_the_closest() {
        let e = VidurFlags::parse(&args("--sarathi_scheduler_config_chunk 512")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--sarathi_scheduler_config_chunk_size"),
            "{msg}"
        );
    }

    #[test]
    fn missing_value_is_an_error() {
        assert!(VidurFlags::parse(&args("--seed")).is_err());
        assert!(VidurFlags::parse(&args("--seed --time_limit 3")).is_err());
    }
}
