//! `pitchside status`: the queue's jobs, queued / running / done / failed; with `--wait`, a
//! progress bar until none is queued or running; `--results DIR` writes the results.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pitchside_worker::{Queue, Record, State};

use crate::commands::worker::NatsArgs;

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Wait until no job is queued or running; fails if one failed.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Print every job's record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write each done job's result to DIR/ID.json.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Only these jobs (default: all).
    pub ids: Vec<String>,
}

/// Jobs per state.
fn counts(records: &BTreeMap<String, Record>) -> BTreeMap<State, usize> {
    let mut c = BTreeMap::new();
    for s in [State::Queued, State::Running, State::Done, State::Failed] {
        c.insert(s, 0);
    }
    for r in records.values() {
        *c.entry(r.state).or_default() += 1;
    }
    c
}

fn line(c: &BTreeMap<State, usize>) -> String {
    c.iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn read(q: &Queue, ids: &[String]) -> Result<BTreeMap<String, Record>> {
    let mut all = q.records().await?;
    if !ids.is_empty() {
        for id in ids {
            if !all.contains_key(id) {
                bail!("no job {id} in the queue");
            }
        }
        all.retain(|id, _| ids.contains(id));
    }
    Ok(all)
}

pub fn run(args: StatusArgs) -> Result<()> {
    let deadline = match args.timeout {
        Some(t) => Some(
            Instant::now()
                + Duration::try_from_secs_f64(t)
                    .ok()
                    .with_context(|| format!("--timeout {t}: must be a number of seconds"))?,
        ),
        None => None,
    };
    let (connection, settings) = args.nats.connection("pitchside-status");
    pitchside_worker::block_on(async {
        let q = Queue::connect(&connection, settings).await?;
        let mut records = read(&q, &args.ids).await?;
        if args.wait {
            let bar = std::io::stderr().is_terminal().then(|| {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} jobs  {msg}")
                        .expect("template"),
                );
                b
            });
            let mut last = String::new();
            loop {
                let c = counts(&records);
                let finished = c[&State::Done] + c[&State::Failed];
                let now = line(&c);
                match &bar {
                    Some(b) => {
                        b.set_length(records.len() as u64);
                        b.set_position(finished as u64);
                        b.set_message(now.clone());
                    }
                    // Without a terminal, a line when something changed.
                    None if now != last => eprintln!("{now}"),
                    None => {}
                }
                last = now;
                if c[&State::Queued] + c[&State::Running] == 0 {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    if let Some(b) = &bar {
                        b.abandon();
                    }
                    bail!("--timeout: jobs still queued or running ({})", line(&c));
                }
                pitchside_worker::sleep(Duration::from_millis(500)).await;
                records = read(&q, &args.ids).await?;
            }
            if let Some(b) = &bar {
                b.finish();
            }
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&records)?);
        } else {
            println!("{}", line(&counts(&records)));
            for (id, r) in &records {
                if r.state == State::Failed {
                    println!(
                        "failed {id} ({}): {}",
                        r.source,
                        r.error.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        if let Some(dir) = &args.results {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--results {}: cannot create it", dir.display()))?;
            let mut written = 0;
            for (id, r) in &records {
                if r.state != State::Done {
                    continue;
                }
                if let Some(json) = q.result(id).await? {
                    let path = dir.join(format!("{id}.json"));
                    std::fs::write(&path, json)
                        .with_context(|| format!("writing {}", path.display()))?;
                    written += 1;
                }
            }
            eprintln!("{written} result(s) written to {}", dir.display());
        }
        let failed = counts(&records)[&State::Failed];
        if args.wait && failed > 0 {
            bail!("{failed} job(s) failed (their errors are on the dead-letter subject)");
        }
        anyhow::Ok(())
    })?
}
