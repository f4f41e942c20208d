//! `simfid serve`: the simulator as a live OpenAI-compatible server.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use simfid::exec::ExecModel;
use simfid::exec::roofline::Roofline;
use simfid::serve::{ServeOptions, Server};
use simfid::tokenize::TokenCounter;

use super::args::EngineArgs;
use super::simulate::{SimulateArgs, engine_config, exec_model};

/// Flags of `simfid serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one; the ready line names it).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Engine flags.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Name served in /v1/models and answers (default: the model's name).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Execution-time model: roofline, tables:DIR or profile:MLP_CSV,ATTENTION_CSV.
    #[arg(long, default_value = "roofline")]
    pub exec: String,
    /// Roofline only: constant per-iteration overhead in ms (framework/CPU time).
    #[arg(long)]
    pub step_overhead_ms: Option<f64>,
    /// Wall seconds per simulated second (2 = half speed).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Count string prompts with this tokenizer.json instead of counting words (and stream
    /// outputs as whole tokens of it).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Longest prompt + output in tokens (default: the model's max_position_embeddings);
    /// longer requests get HTTP 400, as from vLLM.
    #[arg(long)]
    pub max_model_len: Option<u32>,
}

/// Builds the server options from the flags.
pub fn options(a: &ServeArgs) -> Result<(ServeOptions, String)> {
    let sim_args = SimulateArgs {
        engine: a.engine.clone(),
        ..SimulateArgs::default()
    };
    let (model, kind, cfg) = engine_config(&sim_args)?;
    if a.step_overhead_ms.is_some() && a.exec != "roofline" {
        bail!("--step-overhead-ms applies to --exec roofline only");
    }
    // Check the execution-time model here, where errors reach the user; the engine thread
    // builds its own copy.
    let (_, exec_desc) = exec_model(&a.exec, &model, &cfg)?;
    let overhead_s = a.step_overhead_ms.unwrap_or(0.0) / 1e3;
    let exec_desc = if overhead_s > 0.0 {
        format!("{exec_desc} + {} ms per iteration", overhead_s * 1e3)
    } else {
        exec_desc
    };
    let (spec, m, c) = (a.exec.clone(), model.clone(), cfg.clone());
    let exec = Box::new(move || -> std::result::Result<Box<dyn ExecModel>, String> {
        if spec == "roofline" {
            let mut r = Roofline::new(&m, &c.device, c.tensor_parallel_size, c.num_pipeline_stages)
                .map_err(|e| e.to_string())?;
            r.overhead_s = overhead_s;
            return Ok(Box::new(r));
        }
        exec_model(&spec, &m, &c)
            .map(|(e, _)| e)
            .map_err(|e| format!("{e:#}"))
    });
    let tokenizer = match &a.tokenizer {
        Some(p) => Some(Arc::new(TokenCounter::from_file(p)?)),
        None => None,
    };
    let name = a.served_model_name.clone().unwrap_or(model.name.clone());
    let max_model_len = match (a.max_model_len, model.max_position_embeddings) {
        (Some(0), _) => bail!("--max-model-len must be at least 1"),
        (Some(n), _) => n,
        (None, 0) => bail!(
            "{}: the model config gives no max_position_embeddings: pass --max-model-len",
            model.name
        ),
        (None, n) => n,
    };
    let plan = simfid::sim::memory_plan(&cfg)?;
    let description = serde_json::json!({
        "kv_blocks": plan.num_blocks,
        "max_batch_size": plan.max_batch_size,
        "scheduler_config": cfg.scheduler,
        "model": model.name,
        "device": cfg.device.name,
        "scheduler": kind.name(),
        "execution_time_model": exec_desc,
        "time_scale": a.time_scale,
        "prompt_tokens": if a.tokenizer.is_some() { "tokenizer" } else { "words (or token-id list length)" },
        "max_model_len": max_model_len,
    });
    let summary = format!(
        "{} on {} ({} scheduler), execution time: {exec_desc}, time scale {}",
        model.name,
        cfg.device.name,
        kind.name(),
        a.time_scale
    );
    Ok((
        ServeOptions {
            cfg,
            exec,
            model_name: name,
            time_scale: a.time_scale,
            tokenizer,
            description,
            max_model_len,
        },
        summary,
    ))
}

/// Runs `simfid serve` until killed.
pub fn main(a: ServeArgs) -> Result<i32> {
    let (opts, summary) = options(&a)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let server = Server::bind(&format!("{}:{}", a.host, a.port), opts).await?;
        let addr = server.local_addr()?;
        eprintln!("simfid serve: {summary}");
        if a.tokenizer.is_none() {
            eprintln!(
                "simfid serve: string prompts are counted as words (token-id lists exactly); \
                 pass --tokenizer tokenizer.json for clients that send text"
            );
        }
        // Exactly one line on stdout, once the socket accepts connections.
        let mut out = std::io::stdout().lock();
        writeln!(out, "simfid serve: listening on http://{addr}/v1")?;
        out.flush()?;
        drop(out);
        server.run().await?;
        Ok(0)
    })
}
