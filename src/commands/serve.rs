//! `pitchside serve`: the Score Vision miner service on a loaded pipeline.

use std::sync::Arc;

use anyhow::Result;
use pitchside_service::PipelineAnalyzer;

use crate::deployment::DeploymentArgs;

#[derive(clap::Args)]
pub struct ServeArgs {
    // The deployment's `service:` section configures the service.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Listen address, overriding `service.listen`.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let resolved = args.deployment.resolve()?;
    let mut cfg = resolved.deployment.file.service.clone().unwrap_or_default();
    // A relative temp_dir is relative to the YAML file, like every other path.
    cfg.resolve_paths(&resolved.deployment.base_dir);
    // Loading and warming the models takes minutes on a GPU: a bad `service:` section or a
    // busy port is reported before that, not after. (The port is bound for real after the
    // warm-up; one taken in between is still reported then.)
    pitchside_service::config::validate(&cfg)?;
    let listen = args.listen.unwrap_or(cfg.listen);
    drop(std::net::TcpListener::bind(listen).map_err(|source| {
        pitchside_service::ServiceError::Bind {
            addr: listen,
            source,
        }
    })?);
    let mut pipeline = resolved.into_pipeline()?;
    if let Some([w, h]) = cfg.warm_up_frame {
        eprintln!(
            "warming up the models on a {w}x{h} batch (GPU autotuning can take minutes on a cold cache)..."
        );
        let took = pipeline.warm_up(w, h)?;
        eprintln!("warm-up done in {:.1} s", took.as_secs_f64());
    }
    let analyzer = Arc::new(PipelineAnalyzer::new(pipeline));
    pitchside_service::run(cfg, args.listen, analyzer)?;
    Ok(())
}
