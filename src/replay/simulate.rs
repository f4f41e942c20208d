//! A real run's requests simulated at their send times under a [`Preset`], with the step
//! shapes the server had captured before ([`Served`]), and the simulated run returned in the
//! same [`Run`] form, ready for [`crate::fidelity::compare`].

use super::history::{History, Served, WarmUp, session_history};
use super::preset::Preset;
use super::reconstruct::{infer_captured, run_keys};
use super::steps::STEP_GAP_S;
use crate::error::{Error, Result};
use crate::exec::ExecModel;
use crate::exec::step::{GraphKey, StepExec};
use crate::fixture::{Run, RunMeta, Source};
use crate::sim::{RecordSink, RequestRecord, SimConfig, Simulator};
use crate::workload::RequestSpec;
use std::collections::HashMap;

impl Preset {
    /// Replays `real` under this preset on a server that has served nothing before: every step
    /// shape is captured (and stalls) the first time it occurs. See [`Preset::replay_after`].
    pub fn replay(&self, real: &Run) -> Result<Run> {
        self.replay_after(real, &[])
    }

    /// Replays `real` on a server that served `history` before it (recorded runs, in that
    /// order, from its start): the step shapes (CUDA graphs) those runs made the real server
    /// capture, read off their reconstructed steps ([`run_keys`]),
    /// are warm when `real` starts, as they were on the real server.
    pub fn replay_after(&self, real: &Run, history: &[&Run]) -> Result<Run> {
        let served: Vec<Served> = history.iter().map(|r| Served::Run(r)).collect();
        Ok(self.replay_served(real, &served)?.0)
    }

    /// Replays `real` after `history` (runs and warm-ups the server served before it, in
    /// order); also returns how many step shapes the replay of `real` captured.
    pub fn replay_served(&self, real: &Run, history: &[Served]) -> Result<(Run, u64)> {
        let mut exec = StepExec::new(&self.step.step);
        // A server that captures its CUDA graphs at start (vLLM): no history changes a step.
        let history = if self.step.step.capture_s > 0.0 {
            history
        } else {
            &[]
        };
        for h in history {
            if let Served::InferredFrom(r) = h {
                let (warm, new) = infer_captured(
                    r,
                    STEP_GAP_S,
                    self.scheduler.max_tokens_in_batch,
                    &self.step.step,
                    self.step.serving_delay_s,
                );
                let decided = (warm.len() + new.len()).max(1) as f64;
                let unknown = self.step.step.capture_s * new.len() as f64 / decided;
                exec = exec.with_unknown(new, unknown);
                exec.add_keys(warm);
            }
        }
        for h in history {
            match h {
                Served::Run(r) => exec.add_keys(self.recorded_keys(r)),
                Served::WarmUp { lengths_of, warmup } => {
                    self.simulate_warmup(lengths_of, warmup, &exec)?;
                }
                Served::InferredFrom(_) => {}
            }
        }
        exec.take_captures();
        let run = self.replay_with(real, &exec)?;
        Ok((run, exec.take_captures()))
    }

    /// Replays a recording session: `runs` as one server process served them, in order. Each
    /// run is replayed with the step shapes the runs before it captured on the real server
    /// warm; returns every replay with the number of shapes it captured. The same as
    /// [`Preset::replay_after`] on each run with the runs before it, in linear time.
    pub fn replay_session(&self, runs: &[&Run]) -> Result<Vec<(Run, u64)>> {
        let mut out = Vec::with_capacity(runs.len());
        let mut warm: Vec<GraphKey> = Vec::new();
        for r in runs {
            let exec = StepExec::with_keys(&self.step.step, warm.iter().copied());
            let run = self.replay_with(r, &exec)?;
            out.push((run, exec.take_captures()));
            warm.extend(self.recorded_keys(r));
        }
        Ok(out)
    }

    /// The step shapes a recorded run made its server capture, under this preset's token
    /// budget and padding (steps cut at 3 ms gaps).
    pub fn recorded_keys(&self, run: &Run) -> Vec<GraphKey> {
        run_keys(
            run,
            STEP_GAP_S,
            self.scheduler.max_tokens_in_batch,
            &self.step.step.padding,
        )
    }

    /// A closed-loop warm-up as `simfid record --warmup N --warmup-concurrency C` sends it:
    /// `N` requests with lengths cycled from `lengths_of`'s requests, `C` in flight at a time,
    /// each sent when one finishes.
    fn simulate_warmup(&self, lengths_of: &Run, w: &WarmUp, exec: &dyn ExecModel) -> Result<()> {
        let specs = replay_workload(lengths_of);
        if specs.is_empty() || w.requests == 0 {
            return Ok(());
        }
        let spec = |i: u64, t: f64| {
            let s = &specs[(i % specs.len() as u64) as usize];
            RequestSpec {
                id: i,
                arrival_s: t,
                prefill_tokens: s.prefill_tokens,
                decode_tokens: s.decode_tokens,
            }
        };
        let mut sim = Simulator::new(self.sim_config(), exec)?;
        let mut done: Vec<RequestRecord> = Vec::new();
        let mut sent = 0u64;
        while sent < w.requests.min(w.concurrency.max(1) as u64) {
            sim.add_request(spec(sent, 0.0))?;
            sent += 1;
        }
        let mut finished = 0usize;
        while let Some(t) = sim.next_event_time() {
            sim.advance_until(t, &mut done as &mut dyn RecordSink)?;
            while done.len() > finished {
                finished += 1;
                if sent < w.requests {
                    sim.add_request(spec(sent, sim.now()))?;
                    sent += 1;
                }
            }
        }
        sim.finish(&mut done as &mut dyn RecordSink)?;
        Ok(())
    }

    fn replay_with(&self, real: &Run, exec: &dyn ExecModel) -> Result<Run> {
        replay_frontend(
            real,
            self.sim_config(),
            exec,
            &Delays {
                arrival_s: self.step.arrival_delay_s,
                arrival_per_stream_s: self.step.arrival_delay_per_stream_s,
                serving_s: self.step.serving_delay_s,
            },
            &self.name,
        )
    }
}

/// A replay with what it assumed.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The simulated run.
    pub sim: Run,
    /// Step shapes (CUDA graphs) the replay captured.
    pub captures: u64,
    /// The history used, in words.
    pub history: String,
}

impl Preset {
    /// Replays `real` after `history`, exactly as `simfid check` does (the library and the
    /// command give the same report). `path` is where `real` was read from: with
    /// [`History::Auto`] its `.meta.json` names the earlier runs of its server, read from the
    /// same folder (an error names a listed run that is missing).
    ///
    /// ```
    /// # fn main() -> simfid::Result<()> {
    /// use simfid::replay::{History, Preset};
    /// let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
    ///     .join("golden/h100/qwen3-0.6b/hf-cb/s3-fresh40/judge-poisson-2qps.jsonl");
    /// let (real, _) = simfid::fixture::read_run(&path)?;
    /// let replay = Preset::for_run(&real)?.replay_history(&real, Some(&path), &History::Auto)?;
    /// simfid::assert_fidelity!(replay.sim, real, { e2e: p50 10%; itl: p50 10%; });
    /// # Ok(())
    /// # }
    /// ```
    pub fn replay_history(
        &self,
        real: &Run,
        path: Option<&std::path::Path>,
        history: &History,
    ) -> Result<Replay> {
        let mut warmup: Option<WarmUp> = None;
        let mut infer = false;
        let mut runs: Vec<Run> = Vec::new();
        let what: String = match history {
            History::None => "none".into(),
            History::SelfShapes => {
                runs.push(real.clone());
                "every shape of this run".into()
            }
            History::Infer => {
                infer = true;
                "inferred from the run's own steps".into()
            }
            History::WarmUp(w) => {
                warmup = Some(*w);
                format!(
                    "{} warm-up requests, {} at a time",
                    w.requests, w.concurrency
                )
            }
            History::Runs(r) => {
                runs = r.clone();
                format!("{} runs given", r.len())
            }
            History::Auto => {
                let listed = match path {
                    Some(p) => session_history(p)?,
                    None => None,
                };
                match listed {
                    Some(paths) => {
                        for p in &paths {
                            runs.push(crate::fixture::read_any(p)?.0);
                        }
                        format!("{} runs from the run's metadata", paths.len())
                    }
                    None => match real
                        .meta
                        .warmup
                        .as_deref()
                        .and_then(WarmUp::from_description)
                    {
                        Some(w) => {
                            warmup = Some(w);
                            format!(
                                "{} warm-up requests, {} at a time, declared in the run's header",
                                w.requests, w.concurrency
                            )
                        }
                        None => {
                            infer = true;
                            "unknown (no metadata, no declared warm-up): inferred from the \
                             run's own steps"
                                .into()
                        }
                    },
                }
            }
        };
        let mut served: Vec<Served> = runs.iter().map(Served::Run).collect();
        if let Some(w) = warmup {
            served.push(Served::WarmUp {
                lengths_of: real,
                warmup: w,
            });
        }
        if infer {
            served.push(Served::InferredFrom(real));
        }
        let (sim, captures) = self.replay_served(real, &served)?;
        Ok(Replay {
            sim,
            captures,
            history: what,
        })
    }
}

/// The requests of a real run as the server saw them: sent at their actual send time, with
/// the number of output tokens the server produced. Requests that failed are left out.
pub fn replay_workload(real: &Run) -> Vec<RequestSpec> {
    let mut v: Vec<RequestSpec> = real
        .requests
        .iter()
        .filter(|r| r.ok())
        .map(|r| RequestSpec {
            id: r.id,
            arrival_s: r.sent.unwrap_or(r.scheduled),
            prefill_tokens: r.usage_prompt_tokens.unwrap_or(r.prompt_tokens).max(1),
            decode_tokens: r.received_tokens().max(1),
        })
        .collect();
    v.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    v
}

/// Simulates the requests of `real` with `cfg` and `exec`; every output token reaches the
/// client `serving_delay_s` after the step that produced it. The result keeps the real run's
/// request ids and scheduled times, so the two runs compare request by request.
pub fn replay(
    real: &Run,
    cfg: SimConfig,
    exec: &dyn ExecModel,
    serving_delay_s: f64,
    label: &str,
) -> Result<Run> {
    replay_delayed(real, cfg, exec, 0.0, serving_delay_s, label)
}

/// The client-visible delays of a replay (a [`StepProfile`](super::StepProfile)'s
/// `arrival_delay_s`, `arrival_delay_per_stream_s` and `serving_delay_s`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Delays {
    /// Send → the server's scheduler queue, on an idle frontend.
    pub arrival_s: f64,
    /// Added to the way in per response stream open at the request's send time.
    pub arrival_per_stream_s: f64,
    /// End of a token's step → the client, plus the way in.
    pub serving_s: f64,
}

/// Most passes of [`replay_frontend`]: each recounts the streams open at every send time
/// from the previous pass's simulation (never from the real run's timing).
pub const FRONTEND_PASSES: usize = 4;

/// [`replay_delayed`] with a frontend whose way in grows with the response streams it is
/// feeding: request `i` reaches the scheduler `arrival_s + arrival_per_stream_s × n_i` after
/// its send, `n_i` = the simulated requests sent before it whose last token has not reached
/// the client yet. `n_i` depends on the simulation, so the replay starts from `n = 0` and is
/// repeated with the previous pass's counts until they settle (at most [`FRONTEND_PASSES`]
/// passes). Without the per-stream term this is exactly [`replay_delayed`].
pub fn replay_frontend(
    real: &Run,
    cfg: SimConfig,
    exec: &dyn ExecModel,
    d: &Delays,
    label: &str,
) -> Result<Run> {
    if d.arrival_per_stream_s == 0.0 {
        return replay_delayed(real, cfg, exec, d.arrival_s, d.serving_s, label);
    }
    let mut extra: HashMap<u64, f64> = HashMap::new();
    let mut run = replay_shifted(
        real,
        cfg.clone(),
        exec,
        d.arrival_s,
        d.serving_s,
        &extra,
        label,
    )?;
    for _ in 1..FRONTEND_PASSES {
        let next = open_streams(&run, d.arrival_per_stream_s);
        let settled = next
            .iter()
            .all(|(id, x)| (x - extra.get(id).copied().unwrap_or(0.0)).abs() < 1e-4);
        if settled {
            break;
        }
        extra = next;
        run = replay_shifted(
            real,
            cfg.clone(),
            exec,
            d.arrival_s,
            d.serving_s,
            &extra,
            label,
        )?;
    }
    Ok(run)
}

/// Per request of `run`: `per_stream ×` the requests sent before it whose last chunk reached
/// the client after its send.
pub fn open_streams(run: &Run, per_stream: f64) -> HashMap<u64, f64> {
    let mut by_sent: Vec<(u64, f64, f64)> = run
        .requests
        .iter()
        .map(|r| {
            let sent = r.sent.unwrap_or(r.scheduled);
            let end = r.chunks.last().map_or(sent, |c| c.t);
            (r.id, sent, end)
        })
        .collect();
    by_sent.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut ends: Vec<f64> = Vec::with_capacity(by_sent.len());
    let mut out = HashMap::with_capacity(by_sent.len());
    for (id, sent, end) in by_sent {
        // Open at this send: sent earlier (all of `ends`), ending later.
        let open = ends.len() - ends.partition_point(|&e| e <= sent);
        out.insert(id, per_stream * open as f64);
        let at = ends.partition_point(|&e| e <= end);
        ends.insert(at, end);
    }
    out
}

/// [`replay`] where each request reaches the simulated server `arrival_delay_s` after its
/// send time and each token reaches the client `serving_delay_s − arrival_delay_s` after its
/// step (so an idle server's TTFT is one step plus `serving_delay_s`, as in [`replay`]).
pub fn replay_delayed(
    real: &Run,
    cfg: SimConfig,
    exec: &dyn ExecModel,
    arrival_delay_s: f64,
    serving_delay_s: f64,
    label: &str,
) -> Result<Run> {
    let none = HashMap::new();
    replay_shifted(
        real,
        cfg,
        exec,
        arrival_delay_s,
        serving_delay_s,
        &none,
        label,
    )
}

/// [`replay_delayed`] with `extra[id]` more on the way in of request `id`.
fn replay_shifted(
    real: &Run,
    cfg: SimConfig,
    exec: &dyn ExecModel,
    arrival_delay_s: f64,
    serving_delay_s: f64,
    extra: &HashMap<u64, f64>,
    label: &str,
) -> Result<Run> {
    let mut workload = replay_workload(real);
    for w in &mut workload {
        w.arrival_s += arrival_delay_s + extra.get(&w.id).copied().unwrap_or(0.0);
    }
    // Stable: with no extra delay the order is the send order, as before.
    workload.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    if workload.is_empty() {
        return Err(Error::NothingToReplay);
    }
    let mut records: Vec<RequestRecord> = Vec::new();
    let mut sim = Simulator::new(cfg, exec)?;
    let summary = sim.run(workload, &mut records as &mut dyn RecordSink)?;
    if summary.stalled {
        return Err(Error::ReplayStalled {
            unfinished: summary.unfinished,
        });
    }
    for r in &mut records {
        for t in &mut r.token_times {
            *t += serving_delay_s - arrival_delay_s;
        }
    }
    let mut meta = RunMeta::new(Source::Sim, real.meta.model.clone());
    meta.gpu = real.meta.gpu.clone();
    meta.workload = format!("replay of: {}", real.meta.workload);
    meta.extra.insert(
        "preset".into(),
        serde_json::Value::String(label.to_string()),
    );
    let mut run = Run::from_records(meta, &records);
    // Keep the real run's scheduled and send times so workload checks compare like with like
    // and latencies count from the same instant.
    let by_id: std::collections::HashMap<u64, &crate::fixture::RequestRun> =
        real.requests.iter().map(|x| (x.id, x)).collect();
    for r in &mut run.requests {
        if let Some(orig) = by_id.get(&r.id) {
            r.scheduled = orig.scheduled;
            r.output_tokens = orig.output_tokens;
            if arrival_delay_s != 0.0 || !extra.is_empty() {
                r.sent = orig.sent.or(Some(orig.scheduled));
            }
        }
    }
    Ok(run)
}
