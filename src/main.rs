//! `pitchside`: the command line. Each subcommand is a module of `commands`; the
//! `--config`/`--device` pair they share, and the one device choice, are in `deployment`.

mod commands;
mod deployment;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "pitchside",
    version,
    about = "Soccer video analysis: detection, pitch keypoints, tracking"
)]
struct Cli {
    /// Log filter (also RUST_LOG), e.g. `info`, `pitchside=debug`.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() {
    let cli = Cli::parse();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cli.command.run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
