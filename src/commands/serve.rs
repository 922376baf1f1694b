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
    let pool = Arc::new(resolved.into_pool()?);
    if cfg.max_concurrent_challenges < pool.len() {
        tracing::warn!(
            "{} pipelines but service.max_concurrent_challenges is {}: only that many run at once",
            pool.len(),
            cfg.max_concurrent_challenges
        );
    }
    // Every pipeline is warmed before the service listens (and so says it is available).
    if let Some([w, h]) = cfg.warm_up_frame {
        eprintln!(
            "warming up {} pipeline(s) on a {w}x{h} batch (GPU autotuning can take minutes on a cold cache)...",
            pool.len()
        );
        let took = pool.warm_up(w, h)?;
        eprintln!("warm-up done in {:.1} s", took.as_secs_f64());
    }
    let analyzer = Arc::new(PipelineAnalyzer::with_pool(pool));
    pitchside_service::run(cfg, args.listen, analyzer)?;
    Ok(())
}
