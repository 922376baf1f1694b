//! Counters and histograms for `GET /metrics`, in the Prometheus text format (0.0.4).
//!
//! Hand-written: a handful of series does not justify a metrics framework, and a mutex per
//! update is nothing next to a challenge that takes seconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Bucket bounds (seconds) for stage durations: downloads take ~1 s, analyses up to hours.
const BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
];

/// Durations in seconds, in the buckets above.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Debug, Default)]
struct Inner {
    challenges: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    stages: BTreeMap<&'static str, Histogram>,
    download_bytes: u64,
    download_seconds: f64,
}

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Gauges read at scrape time rather than stored.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub in_flight: usize,
    pub capacity: usize,
    pub available: bool,
    pub draining: bool,
    /// The analyzer's pipelines, when it has a pool.
    pub pipelines: Option<PipelineGauges>,
}

/// The pool of pipelines at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineGauges {
    pub slots: Vec<PipelineGauge>,
    /// Challenges waiting for a free pipeline.
    pub queue: usize,
}

/// One pipeline (one device, or one CPU share).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineGauge {
    /// Its label, e.g. `cuda:1` or `cpu#0`.
    pub device: String,
    pub busy: bool,
    pub runs: u64,
    pub failures: u64,
    pub busy_s: f64,
    /// Analysis time of its successful runs.
    pub latency: Histogram,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A finished challenge request: `ok`, `busy`, `unauthorized`, `download_failed`, …
    pub fn challenge(&self, outcome: &'static str) {
        self.with(|m| *m.challenges.entry(outcome).or_default() += 1);
    }

    pub fn error(&self, kind: &str) {
        self.with(|m| *m.errors.entry(kind.to_owned()).or_default() += 1);
    }

    pub fn stage(&self, stage: &'static str, d: Duration) {
        self.with(|m| m.stages.entry(stage).or_default().observe(d.as_secs_f64()));
    }

    pub fn download(&self, bytes: u64, d: Duration) {
        self.with(|m| {
            m.download_bytes += bytes;
            m.download_seconds += d.as_secs_f64();
        });
    }

    /// How many challenges ended with `outcome` (for tests and logs).
    pub fn challenges(&self, outcome: &str) -> u64 {
        self.with(|m| m.challenges.get(outcome).copied().unwrap_or(0))
    }

    pub fn render(&self, g: Gauges) -> String {
        let m = self.with(|m| {
            (
                m.challenges.clone(),
                m.errors.clone(),
                m.stages.clone(),
                m.download_bytes,
                m.download_seconds,
            )
        });
        let (challenges, errors, stages, bytes, secs) = m;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP pitchside_challenges_total Challenge requests by outcome.\n\
             # TYPE pitchside_challenges_total counter"
        );
        for (k, v) in &challenges {
            let _ = writeln!(s, "pitchside_challenges_total{{outcome=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP pitchside_errors_total Errors by kind.\n# TYPE pitchside_errors_total counter"
        );
        for (k, v) in &errors {
            let _ = writeln!(s, "pitchside_errors_total{{kind=\"{}\"}} {v}", escape(k));
        }
        let _ = writeln!(
            s,
            "# HELP pitchside_stage_duration_seconds Time per challenge stage (download, check, analyze, total).\n\
             # TYPE pitchside_stage_duration_seconds histogram"
        );
        for (stage, h) in &stages {
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    s,
                    "pitchside_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                s,
                "pitchside_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}\n\
                 pitchside_stage_duration_seconds_sum{{stage=\"{stage}\"}} {}\n\
                 pitchside_stage_duration_seconds_count{{stage=\"{stage}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            s,
            "# HELP pitchside_download_bytes_total Bytes of challenge video downloaded.\n\
             # TYPE pitchside_download_bytes_total counter\n\
             pitchside_download_bytes_total {bytes}\n\
             # HELP pitchside_download_seconds_total Time spent downloading challenge videos.\n\
             # TYPE pitchside_download_seconds_total counter\n\
             pitchside_download_seconds_total {secs}\n\
             # HELP pitchside_challenges_in_flight Challenges being downloaded or analysed.\n\
             # TYPE pitchside_challenges_in_flight gauge\n\
             pitchside_challenges_in_flight {}\n\
             # HELP pitchside_challenge_capacity Challenges that may run at once.\n\
             # TYPE pitchside_challenge_capacity gauge\n\
             pitchside_challenge_capacity {}\n\
             # HELP pitchside_available Whether a challenge would be accepted now.\n\
             # TYPE pitchside_available gauge\n\
             pitchside_available {}\n\
             # HELP pitchside_draining Whether the service is shutting down.\n\
             # TYPE pitchside_draining gauge\n\
             pitchside_draining {}",
            g.in_flight, g.capacity, g.available as u8, g.draining as u8
        );
        if let Some(p) = &g.pipelines {
            render_pipelines(&mut s, p);
        }
        s
    }
}

/// Per-pipeline series: busy, runs, failures, busy time, latency; and the queue.
fn render_pipelines(s: &mut String, p: &PipelineGauges) {
    let free = p.slots.iter().filter(|g| !g.busy).count();
    let _ = writeln!(
        s,
        "# HELP pitchside_pipelines Loaded pipelines (one per device or CPU share).\n\
         # TYPE pitchside_pipelines gauge\n\
         pitchside_pipelines {}\n\
         # HELP pitchside_pipelines_free Pipelines free now.\n\
         # TYPE pitchside_pipelines_free gauge\n\
         pitchside_pipelines_free {free}\n\
         # HELP pitchside_pipeline_queue Challenges waiting for a free pipeline.\n\
         # TYPE pitchside_pipeline_queue gauge\n\
         pitchside_pipeline_queue {}",
        p.slots.len(),
        p.queue
    );
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&PipelineGauge) -> String,
    );
    let series: [Series; 4] = [
        (
            "pitchside_pipeline_busy",
            "gauge",
            "Whether the pipeline is running a video.",
            |g| u8::from(g.busy).to_string(),
        ),
        (
            "pitchside_pipeline_runs_total",
            "counter",
            "Videos the pipeline ran.",
            |g| g.runs.to_string(),
        ),
        (
            "pitchside_pipeline_failures_total",
            "counter",
            "Runs that failed.",
            |g| g.failures.to_string(),
        ),
        (
            "pitchside_pipeline_busy_seconds_total",
            "counter",
            "Time the pipeline spent running.",
            |g| g.busy_s.to_string(),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for g in &p.slots {
            let _ = writeln!(s, "{name}{{device=\"{}\"}} {}", escape(&g.device), value(g));
        }
    }
    let _ = writeln!(
        s,
        "# HELP pitchside_pipeline_run_duration_seconds Analysis time per pipeline.\n\
         # TYPE pitchside_pipeline_run_duration_seconds histogram"
    );
    for g in &p.slots {
        let d = escape(&g.device);
        let h = &g.latency;
        for (b, c) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                s,
                "pitchside_pipeline_run_duration_seconds_bucket{{device=\"{d}\",le=\"{b}\"}} {c}"
            );
        }
        let _ = writeln!(
            s,
            "pitchside_pipeline_run_duration_seconds_bucket{{device=\"{d}\",le=\"+Inf\"}} {}\n\
             pitchside_pipeline_run_duration_seconds_sum{{device=\"{d}\"}} {}\n\
             pitchside_pipeline_run_duration_seconds_count{{device=\"{d}\"}} {}",
            h.count, h.sum, h.count
        );
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.challenge("ok");
        m.challenge("ok");
        m.challenge("busy");
        m.error("download_http_status");
        m.stage("download", Duration::from_millis(300));
        m.download(1234, Duration::from_millis(300));
        let text = m.render(Gauges {
            in_flight: 1,
            capacity: 1,
            available: false,
            draining: false,
            pipelines: None,
        });
        assert!(text.contains("pitchside_challenges_total{outcome=\"ok\"} 2\n"));
        assert!(text.contains("pitchside_challenges_total{outcome=\"busy\"} 1\n"));
        assert!(text.contains("pitchside_errors_total{kind=\"download_http_status\"} 1\n"));
        assert!(text.contains(
            "pitchside_stage_duration_seconds_bucket{stage=\"download\",le=\"0.25\"} 0\n"
        ));
        assert!(text.contains(
            "pitchside_stage_duration_seconds_bucket{stage=\"download\",le=\"0.5\"} 1\n"
        ));
        assert!(text.contains("pitchside_stage_duration_seconds_count{stage=\"download\"} 1\n"));
        assert!(text.contains("pitchside_download_bytes_total 1234\n"));
        assert!(text.contains("pitchside_available 0\n"));
        assert_eq!(m.challenges("ok"), 2);
        assert!(!text.contains("pitchside_pipeline"));
    }

    #[test]
    fn renders_each_pipeline() {
        let mut latency = Histogram::default();
        latency.observe(3.0);
        let gauge = |device: &str, busy| PipelineGauge {
            device: device.into(),
            busy,
            runs: 1,
            failures: 0,
            busy_s: 3.0,
            latency: latency.clone(),
        };
        let text = Metrics::default().render(Gauges {
            in_flight: 2,
            capacity: 2,
            available: true,
            draining: false,
            pipelines: Some(PipelineGauges {
                slots: vec![gauge("cuda:0", true), gauge("cuda:1", false)],
                queue: 1,
            }),
        });
        for line in [
            "pitchside_pipelines 2\n",
            "pitchside_pipelines_free 1\n",
            "pitchside_pipeline_queue 1\n",
            "pitchside_pipeline_busy{device=\"cuda:0\"} 1\n",
            "pitchside_pipeline_busy{device=\"cuda:1\"} 0\n",
            "pitchside_pipeline_runs_total{device=\"cuda:1\"} 1\n",
            "pitchside_pipeline_run_duration_seconds_bucket{device=\"cuda:0\",le=\"2.5\"} 0\n",
            "pitchside_pipeline_run_duration_seconds_bucket{device=\"cuda:0\",le=\"5\"} 1\n",
            "pitchside_pipeline_run_duration_seconds_count{device=\"cuda:1\"} 1\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
    }
}
