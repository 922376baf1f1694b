//! `pitchside config show`: the effective configuration as YAML.

use anyhow::Result;
use clap::Subcommand;

use crate::deployment::DeploymentArgs;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (after profile and environment overrides) as YAML.
    Show {
        #[command(flatten)]
        deployment: DeploymentArgs,
    },
}

pub fn run(command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Show { deployment } => {
            let effective = deployment.resolve()?.effective()?;
            print!("{}", serde_yaml_ng::to_string(&effective)?);
            Ok(())
        }
    }
}
