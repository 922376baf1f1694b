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
        eprintln!("error: {}", report(&e));
        std::process::exit(1);
    }
}

/// An error and its causes, each said once. Some library errors put their source in their
/// own message (`cannot listen on ADDR: {source}`) and return it as their source too, so
/// `{:#}` would print it twice (`Address already in use (os error 98): Address already in
/// use (os error 98)`); a cause whose text is already there is left out.
fn report(e: &anyhow::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_os_error_is_reported_once() {
        let bind = pitchside_service::ServiceError::Bind {
            addr: "127.0.0.1:8000".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let os = std::io::Error::from(std::io::ErrorKind::AddrInUse).to_string();
        let msg = report(&anyhow::Error::new(bind).context("serve"));
        assert_eq!(msg.matches(&*os).count(), 1, "{msg}");
        assert_eq!(msg, format!("serve: cannot listen on 127.0.0.1:8000: {os}"));
        // Causes that add something are all kept, in order.
        let e = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(report(&e), "outer: middle: inner");
    }
}
