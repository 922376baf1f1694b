//! `pitchside submit`: enqueues videos (paths on storage the workers share, or URLs) on the
//! NATS JetStream work queue. A job's id is the SHA-256 of the file (or of the URL string)
//! unless given; a job already queued, running or done is not queued again.

use std::path::PathBuf;

use anyhow::{Result, bail};
use pitchside_worker::Job;
use pitchside_worker::job::{job_for, read_manifest};

use crate::commands::worker::NatsArgs;

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The job id (one source only); default: the content address.
    #[arg(long)]
    pub id: Option<String>,
    /// A file of jobs: one path or URL per line, or {"source": ..., "id": ...}.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Videos: paths or http(s) URLs.
    pub sources: Vec<String>,
}

pub fn run(args: SubmitArgs) -> Result<()> {
    if args.id.is_some() && (args.sources.len() != 1 || args.manifest.is_some()) {
        bail!("--id names one job: give exactly one source (and no --manifest)");
    }
    // Every job is checked (and every file hashed) before anything is queued.
    let mut jobs: Vec<Job> = Vec::new();
    if let Some(m) = &args.manifest {
        jobs.extend(read_manifest(m)?);
    }
    for s in &args.sources {
        jobs.push(job_for(s, args.id.as_deref())?);
    }
    if jobs.is_empty() {
        bail!("nothing to submit: give videos or --manifest FILE");
    }
    let (connection, settings) = args.nats.connection("pitchside-submit");
    let (queued, known) = pitchside_worker::block_on(async {
        let q = pitchside_worker::Queue::connect(&connection, settings).await?;
        let (mut queued, mut known) = (0, 0);
        for job in &jobs {
            if q.submit(job).await? {
                queued += 1;
                println!("{}\tqueued\t{}", job.id, job.source);
            } else {
                known += 1;
                println!("{}\talready known\t{}", job.id, job.source);
            }
        }
        anyhow::Ok((queued, known))
    })??;
    eprintln!("{queued} job(s) queued, {known} already known");
    Ok(())
}
