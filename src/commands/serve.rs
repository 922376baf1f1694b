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
    if let Some(frame) = cfg.warm_up_frame {
        // The shapes `pitchside tune` warms: with its cache, seconds; cold, minutes of GPU
        // autotuning.
        let shapes = pipeline.warm_up_shapes(&[frame]);
        match pitchside_models::kernel_cache::current() {
            Some(c) => eprintln!(
                "warming up {} shapes; kernel cache {} ({} autotune entries; `pitchside tune` fills it)...",
                shapes.len(),
                c.dir.display(),
                pitchside_models::kernel_cache::autotune_entries(&c.dir)
            ),
            None => eprintln!("warming up {} shapes...", shapes.len()),
        }
        let start = std::time::Instant::now();
        for shape in &shapes {
            let took = pipeline.warm_up_shape(shape)?;
            eprintln!("  {shape}: {:.1} s", took.as_secs_f64());
        }
        eprintln!("warm-up done in {:.1} s", start.elapsed().as_secs_f64());
    }
    let analyzer = Arc::new(PipelineAnalyzer::new(pipeline));
    pitchside_service::run(cfg, args.listen, analyzer)?;
    Ok(())
}
