//! One module per subcommand, each with its arguments and its `run`. A new command is a
//! new module here plus a variant of `Command`.

mod analyze;
mod bench;
mod config;
mod detect;
mod devices;
mod plugins;
mod run;
mod score;
mod serve;
mod status;
mod submit;
mod tune;
mod worker;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum Command {
    /// Inspect the deployment configuration.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// List the backends compiled in and the devices they find.
    Devices,
    /// Run a YOLO checkpoint on images; print detections as JSON.
    Detect(detect::DetectArgs),
    /// Analyse a video: tracked objects and pitch keypoints for every frame (Score Vision JSON).
    Run(run::RunArgs),
    /// Where the time goes: per-stage throughput on a video, or per-image latency of a model.
    Bench(bench::BenchArgs),
    /// The Score Vision validator's keypoint score of an answer, computed locally.
    Score(score::ScoreArgs),
    /// Pitch analytics of an answer: positions in metres, distances, top speeds (JSON/CSV).
    Analyze(analyze::AnalyzeArgs),
    /// Run the Score Vision miner service.
    Serve(serve::ServeArgs),
    /// Run queued jobs from NATS JetStream on this machine's pipelines, until SIGTERM.
    Worker(worker::WorkerArgs),
    /// Queue videos (paths or URLs) for the workers, on NATS JetStream.
    Submit(submit::SubmitArgs),
    /// Queued, running, done and failed jobs; --wait shows a progress bar until all end.
    Status(status::StatusArgs),
    /// Compile and autotune the GPU kernels of every shape the deployment runs, into the
    /// kernel cache (`kernel_cache:`), so that `run` and `serve` start warm.
    Tune(tune::TuneArgs),
    /// Detector and tracker plugins: built-in and configured.
    Plugins {
        #[command(subcommand)]
        command: plugins::PluginsCommand,
    },
}

impl Command {
    pub fn run(self) -> Result<()> {
        match self {
            Command::Config { command } => config::run(command),
            Command::Devices => devices::run(),
            Command::Detect(args) => detect::run(args),
            Command::Run(args) => run::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Score(args) => score::run(args),
            Command::Analyze(args) => analyze::run(args),
            Command::Serve(args) => serve::run(args),
            Command::Tune(args) => tune::run(args),
            Command::Plugins { command } => plugins::run(command),
            Command::Worker(args) => worker::run(args),
            Command::Submit(args) => submit::run(args),
            Command::Status(args) => status::run(args),
        }
    }
}
