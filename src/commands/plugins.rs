//! `pitchside plugins list`: built-in plugins and the libraries a deployment names.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use pitchside_engine::config::Deployment;

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// List built-in plugins and the libraries the deployment names.
    List {
        // Not `DeploymentArgs`: without `--config` only the built-ins are listed (no
        // embedded default), and no device is chosen.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(command: PluginsCommand) -> Result<()> {
    match command {
        PluginsCommand::List { config } => list(config),
    }
}

fn list(config: Option<PathBuf>) -> Result<()> {
    let deployment = match &config {
        Some(p) => Some(Deployment::from_file(p)?),
        None => None,
    };
    println!(
        "{:<10} {:<12} {:<9} {:<4} source",
        "kind", "name", "version", "abi"
    );
    for row in pitchside_engine::plugin_host::list_plugins(deployment.as_ref()) {
        match row {
            Ok(p) => println!(
                "{:<10} {:<12} {:<9} {:<4} {}",
                p.info.kind.to_string(),
                p.info.name,
                p.info.version,
                p.abi_version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.source
            ),
            Err(e) => println!("error: {e}"),
        }
    }
    Ok(())
}
