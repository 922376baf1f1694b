//! `pitchside worker`: runs queued jobs from NATS JetStream on this machine's pipelines
//! (the deployment's `devices:`), until SIGTERM. Also the NATS options that `submit` and
//! `status` share.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use pitchside_worker::{Connection, QueueSettings, WorkerOptions};

use crate::deployment::DeploymentArgs;

/// Where NATS is and how to log in; passed to the client as given.
#[derive(clap::Args, Clone)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long = "nats",
        env = "PITCHSIDE_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,
    /// Credentials file (JWT and NKey seed, as `nsc` writes it).
    #[arg(long = "nats-creds", env = "PITCHSIDE_NATS_CREDS")]
    pub creds: Option<PathBuf>,
    #[arg(long = "nats-user", env = "PITCHSIDE_NATS_USER")]
    pub user: Option<String>,
    #[arg(
        long = "nats-password",
        env = "PITCHSIDE_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    #[arg(
        long = "nats-token",
        env = "PITCHSIDE_NATS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// NKey seed (SU...).
    #[arg(
        long = "nats-nkey",
        env = "PITCHSIDE_NATS_NKEY",
        hide_env_values = true
    )]
    pub nkey: Option<String>,
    /// CA certificate (PEM) for the server's TLS.
    #[arg(long = "tls-ca")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), with --tls-key.
    #[arg(long = "tls-cert")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long = "tls-key")]
    pub tls_key: Option<PathBuf>,
    /// Refuse a connection without TLS.
    #[arg(long = "tls-required")]
    pub tls_required: bool,
    /// Replicas of the stream and buckets when this command creates them (3 on a
    /// 3-node cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
}

impl NatsArgs {
    /// The client's settings, and the stream's when this command creates it.
    pub fn connection(&self, name: &str) -> (Connection, QueueSettings) {
        let c = Connection {
            url: self.url.clone(),
            creds: self.creds.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            token: self.token.clone(),
            nkey: self.nkey.clone(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_required: self.tls_required,
            name: Some(name.to_string()),
        };
        let settings = QueueSettings {
            replicas: self.replicas,
            ..Default::default()
        };
        (c, settings)
    }
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Seconds without an (in-progress) ack before a job is redelivered.
    #[arg(long, default_value_t = 30.0)]
    pub ack_wait: f64,
    /// Deliveries of a failing job before its error goes to the dead-letter subject.
    #[arg(long, default_value_t = 3)]
    pub max_deliver: i64,
    /// After SIGTERM, seconds the running jobs may take before they are handed back.
    #[arg(long, default_value_t = 600.0)]
    pub drain_timeout: f64,
    /// Name in job records (default: host-pid).
    #[arg(long)]
    pub name: Option<String>,
    /// Folder for downloaded videos (default: the system's temporary folder).
    #[arg(long)]
    pub temp_dir: Option<PathBuf>,
}

fn seconds(flag: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero() && v < 1e9)
        .with_context(|| format!("--{flag} {v}: must be a positive number of seconds"))
}

pub fn run(args: WorkerArgs) -> Result<()> {
    let ack_wait = seconds("ack-wait", args.ack_wait)?;
    let drain_timeout = seconds("drain-timeout", args.drain_timeout)?;
    anyhow::ensure!(
        (1..=100).contains(&args.max_deliver),
        "--max-deliver {}: must be between 1 and 100",
        args.max_deliver
    );
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    let resolved = args.deployment.resolve()?;
    // The deployment's `service:` section applies to the worker too: `download` to URL
    // jobs, `warm_up_frame` to the warm-up before the first job (as `serve` does before it
    // listens, so the first job does not pay for GPU autotuning inside its ack deadline).
    // (Its ranges were checked when the deployment was parsed.)
    let service = resolved.deployment.file.service.clone().unwrap_or_default();
    let pool = Arc::new(resolved.load(crate::deployment::Slots::Deployment)?);
    if let Some(frame) = service.warm_up_frame {
        super::serve::warm_up(&pool, frame)?;
    }
    let download = service.download;
    let opts = WorkerOptions {
        name: name.clone(),
        ack_wait,
        max_deliver: args.max_deliver,
        drain_timeout,
        download,
        temp_dir: args.temp_dir.clone().unwrap_or_else(std::env::temp_dir),
    };
    let (connection, settings) = args.nats.connection(&name);
    let summary = pitchside_worker::worker::run_until_signal(connection, settings, pool, opts)?;
    eprintln!(
        "worker stopped: {} done, {} failed, {} retried, {} handed back",
        summary.done, summary.failed, summary.retried, summary.handed_back
    );
    Ok(())
}
