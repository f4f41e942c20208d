//! What a server served before the run being replayed: the step shapes (CUDA graphs) it had
//! captured decide which steps of the replay stall. [`History`] is the choice `simfid check
//! --history` offers; [`Served`] one thing served; [`WarmUp`] a declared warm-up;
//! [`session_history`] reads the runs recorded before on the same server.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::fixture::{Run, read_any};

/// What a server served before the run being replayed, as `simfid check --history` names it.
#[derive(Debug, Clone)]
pub enum History {
    /// The runs listed in `RUN.meta.json` beside the run ([`session_history`]); else the
    /// warm-up its header declares; else [`History::Infer`].
    Auto,
    /// Estimated from the run itself ([`Served::InferredFrom`]).
    Infer,
    /// A server that starts with this run.
    None,
    /// A server that has met every step shape of this run.
    SelfShapes,
    /// A closed-loop warm-up with lengths cycled from the run.
    WarmUp(WarmUp),
    /// These recorded runs, in the order the server served them.
    Runs(Vec<Run>),
}

impl History {
    /// Parses `simfid check --history`'s value: `auto`, `infer`, `none`, `self`, `warmup40`
    /// ([`WarmUp::ISSUE_DEFAULT`]) or a comma-separated list of recorded runs, which are read
    /// here.
    pub fn parse(s: &str) -> Result<History> {
        Ok(match s {
            "auto" => History::Auto,
            "none" => History::None,
            "self" => History::SelfShapes,
            "infer" => History::Infer,
            "warmup40" => History::WarmUp(WarmUp::ISSUE_DEFAULT),
            list => History::Runs(
                list.split(',')
                    .map(|p| Ok(read_any(&PathBuf::from(p))?.0))
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

/// Something a server served before the run being replayed.
#[derive(Debug, Clone, Copy)]
pub enum Served<'a> {
    /// A recorded run (its workload is simulated).
    Run(&'a Run),
    /// Unknown history, estimated from the replayed run itself
    /// ([`super::reconstruct::infer_captured`]): the shapes whose first step stalled were
    /// new, those whose first step did not were captured; any other shape stalls the capture
    /// time times the fraction of the run's first steps that stalled.
    InferredFrom(&'a Run),
    /// A closed-loop warm-up with lengths cycled from a run's requests.
    WarmUp {
        /// The run whose request lengths the warm-up cycled through.
        lengths_of: &'a Run,
        /// How many requests, how many at a time.
        warmup: WarmUp,
    },
}

/// A warm-up sent before a run: `requests` requests, `concurrency` in flight at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmUp {
    /// Requests sent.
    pub requests: u64,
    /// Requests in flight at a time.
    pub concurrency: usize,
}

impl WarmUp {
    /// The warm-up of issue 5's configuration ("40 warm-up requests after start"), sent the
    /// way `simfid record --warmup 40` sends it (4 at a time).
    pub const ISSUE_DEFAULT: WarmUp = WarmUp {
        requests: 40,
        concurrency: 4,
    };

    /// Reads the warm-up from a run header's `warmup` line as `simfid record` writes it
    /// ("N warm-up requests before t = 0 (lengths cycled from the workload, C at a time, …").
    pub fn from_description(s: &str) -> Option<WarmUp> {
        let (n, rest) = s.trim().split_once(" warm-up requests")?;
        let requests: u64 = n.trim().parse().ok()?;
        let concurrency = rest
            .split(',')
            .find_map(|part| part.trim().strip_suffix(" at a time"))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(1);
        Some(WarmUp {
            requests,
            concurrency,
        })
    }
}

/// The runs a recorded run's server served before it, from the run's metadata: `RUN.meta.json`
/// beside `RUN.jsonl` (written by `scripts/device/run_goldens.sh`) lists them in
/// `runs_before_on_server`, each recorded as `NAME.jsonl` in the same folder. Returns `None`
/// when there is no such metadata (the history is unknown), and an error naming the file when
/// the metadata is unreadable or a listed run is missing.
pub fn session_history(run_path: &std::path::Path) -> Result<Option<Vec<std::path::PathBuf>>> {
    let Some(name) = run_path.file_name().and_then(|s| s.to_str()) else {
        return Ok(None);
    };
    let stem = name
        .strip_suffix(".jsonl.gz")
        .or_else(|| name.strip_suffix(".jsonl"))
        .unwrap_or(name);
    let dir = run_path
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."));
    let meta = dir.join(format!("{stem}.meta.json"));
    if !meta.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&meta).map_err(|e| Error::io(&meta, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: meta.clone(),
        message: e.to_string(),
    })?;
    let Some(list) = v.get("runs_before_on_server").and_then(|x| x.as_str()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for name in list.split_whitespace() {
        let plain = dir.join(format!("{name}.jsonl"));
        let p = if plain.is_file() {
            plain
        } else {
            dir.join(format!("{name}.jsonl.gz"))
        };
        if !p.is_file() {
            return Err(Error::MissingHistoryRun {
                meta,
                name: name.to_string(),
                missing: p,
            });
        }
        out.push(p);
    }
    Ok(Some(out))
}
