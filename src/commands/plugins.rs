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
    print!(
        "{}",
        pitchside_engine::plugin_host::plugins_table(deployment.as_ref())
    );
    Ok(())
}
