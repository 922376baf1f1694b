//! `pitchside serve`: the Score Vision miner service on a loaded pipeline.

use std::sync::Arc;

use anyhow::Result;
use pitchside_engine::pool::PipelinePool;
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
    let pool = Arc::new(resolved.load(crate::deployment::Slots::Deployment)?);
    if cfg.max_concurrent_challenges < pool.len() {
        tracing::warn!(
            "{} pipelines but service.max_concurrent_challenges is {}: only that many run at once",
            pool.len(),
            cfg.max_concurrent_challenges
        );
    }
    // Every pipeline is warmed before the service listens (and so says it is available).
    if let Some(frame) = cfg.warm_up_frame {
        warm_up(&pool, frame)?;
    }
    let analyzer = Arc::new(PipelineAnalyzer::with_pool(pool));
    pitchside_service::run(cfg, args.listen, analyzer)?;
    Ok(())
}

/// Runs every shape `pitchside tune` warms through every pipeline of the pool, saying what
/// it does: with the kernel cache filled, seconds; cold, minutes of GPU autotuning. `serve`
/// does it before it listens, `worker` before it takes a job.
pub fn warm_up(pool: &PipelinePool, frame: [u32; 2]) -> Result<()> {
    // Every pipeline has the same shapes.
    let shapes = pool
        .each_pipeline(|p| p.warm_up_shapes(&[frame]))
        .into_iter()
        .next()
        .unwrap_or_default();
    match pitchside_models::kernel_cache::current() {
        Some(c) => eprintln!(
            "warming up {} shapes on {} pipeline(s); kernel cache {} ({} autotune entries; `pitchside tune` fills it)...",
            shapes.len(),
            pool.len(),
            c.dir.display(),
            pitchside_models::kernel_cache::autotune_entries(&c.dir)
        ),
        None => eprintln!(
            "warming up {} shapes on {} pipeline(s)...",
            shapes.len(),
            pool.len()
        ),
    }
    let start = std::time::Instant::now();
    for shape in &shapes {
        let mut longest = std::time::Duration::ZERO;
        for took in pool.each_pipeline(|p| p.warm_up_shape(shape)) {
            longest = longest.max(took?);
        }
        eprintln!("  {shape}: {:.1} s", longest.as_secs_f64());
    }
    eprintln!("warm-up done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
