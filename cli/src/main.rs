//! The `simfid` command line.

mod cli;

use clap::{Parser, Subcommand};

/// simfid: is your LLM-serving simulator faithful to the real server?
#[derive(Parser)]
#[command(name = "simfid", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a workload with simfid's own flags (built-in defaults: Qwen3-0.6B on an H100).
    Simulate(Box<cli::simulate::SimulateArgs>),
    /// Run a simulation with Vidur's own command-line flags (`simfid vidur --help`).
    #[command(disable_help_flag = true)]
    Vidur {
        /// Vidur's flags, e.g. `--replica_config_device a100 …`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure simulator speed and memory (20k and 1M requests); `bench record`: the recorder.
    Bench(cli::bench::BenchArgs),
    /// Replay a real run in the simulator (with a preset) and print the fidelity report.
    Check(Box<cli::check::CheckArgs>),
    /// Print the Vidur model entry and replay command for a model and workload.
    VidurConfig(cli::vidur_config::VidurConfigArgs),
    /// Step-time profiling through a server's API (plan experiments, fit a step model).
    #[command(subcommand)]
    Profile(cli::profile::ProfileCommand),
    /// Compare a simulated run with a real one: Markdown or JSON report, SVG plots, assertions.
    Compare(Box<cli::compare::CompareArgs>),
    /// Convert a vLLM bench result JSON or a Vidur request_metrics.csv into a simfid run.
    Import(cli::convert::ImportArgs),
    /// Write a simfid run in another tool's format (vLLM bench result JSON).
    Export(cli::convert::ExportArgs),
    /// Make workload files: lengths from prompts and a tokenizer, synthetic workloads,
    /// arrivals for a lengths file.
    Trace(Box<cli::trace::TraceArgs>),
    /// Replay a workload against an OpenAI-compatible server and record every chunk's time.
    Record(Box<cli::record::RecordArgs>),
    /// Serve the simulator as a live OpenAI-compatible server (real time).
    Serve(Box<cli::serve::ServeArgs>),
}

impl Command {
    /// Whether the command opens network connections (as a client or as a server).
    fn uses_network(&self) -> bool {
        match self {
            Command::Record(_) | Command::Serve(_) => true,
            Command::Bench(b) => matches!(b.mode, Some(cli::bench::BenchMode::Record(_))),
            // `profile run` records against a server; the other profile commands read files.
            Command::Profile(c) => matches!(c, cli::profile::ProfileCommand::Run { .. }),
            Command::Simulate(_)
            | Command::Vidur { .. }
            | Command::Check(_)
            | Command::VidurConfig(_)
            | Command::Compare(_)
            | Command::Import(_)
            | Command::Export(_)
            | Command::Trace(_) => false,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    // A closed pipe (`simfid … | head`) ends the program quietly, but only for commands that
    // talk to no server: for those that do, a peer that closes its socket while a request is
    // still being written (a server answering 404 before reading a large prompt) would raise
    // SIGPIPE too and kill the whole run. They keep Rust's default (SIGPIPE ignored, the write
    // fails with EPIPE, recorded on that request) and treat a closed stdout themselves.
    #[cfg(unix)]
    if !cli.command.uses_network() {
        unsafe {
            libc_sigpipe_default();
        }
    }
    let result = match cli.command {
        Command::Simulate(a) => cli::simulate::main(*a),
        Command::Vidur { args } => cli::vidur::main(&args),
        Command::Bench(a) => cli::bench::main(a),
        Command::Profile(c) => cli::profile::main(c),
        Command::VidurConfig(a) => cli::vidur_config::main(a),
        Command::Check(a) => cli::check::main(*a),
        Command::Compare(a) => cli::compare::main(*a),
        Command::Import(a) => cli::convert::import(a),
        Command::Export(a) => cli::convert::export(a),
        Command::Trace(a) => cli::trace::main(*a),
        Command::Record(a) => cli::record::main(*a),
        Command::Serve(a) => cli::serve::main(*a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("simfid: error: {}", error_chain(&e));
            std::process::exit(exit_code(&e));
        }
    }
}

/// The exit code of an error: the library's error decides ([`simfid::Error::exit_code`]);
/// any other error (a flag the command refuses, an I/O error of the command itself) is bad
/// input.
fn exit_code(e: &anyhow::Error) -> i32 {
    e.chain()
        .find_map(|c| c.downcast_ref::<simfid::Error>())
        .map_or(cli::exit::BAD_INPUT, simfid::Error::exit_code)
}

/// An error and its causes, `: `-separated, each cause only once: library errors already
/// carry their source's text (`path: No such file or directory`), which `{:#}` would repeat.
fn error_chain(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for cause in e.chain() {
        let m = cause.to_string();
        if s.contains(&m) {
            continue;
        }
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&m);
    }
    s
}

/// Restores the default SIGPIPE action so that writing to a closed pipe ends the process
/// instead of panicking in `println!`.
#[cfg(unix)]
unsafe fn libc_sigpipe_default() {
    unsafe extern "C" {
        fn signal(sig: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}
