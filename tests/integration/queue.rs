//! The work queue end to end, as it runs in production: a real `nats-server` (JetStream in
//! a temp dir, a free loopback port), real `pitchside worker` processes (so one can be
//! SIGKILLed), `pitchside submit` and `pitchside status`, the real clip. The test reads the
//! queue with the worker crate's client.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pitchside_worker::{Connection, DeadLetter, Queue, QueueSettings, Record, State};

use crate::support::{root, signal, vtest};

/// nats-server from PATH or /usr/sbin (Debian's package; scripts/setup.sh installs it).
fn nats_server_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .expect("nats-server is not installed: run scripts/setup.sh --deps-only")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nats-server with JetStream, restartable on the same port and store.
struct Nats {
    child: Child,
    port: u16,
    dir: PathBuf,
    starts: usize,
}

impl Nats {
    fn start(dir: &Path) -> Nats {
        let port = free_port();
        let child = Self::spawn(port, dir, 0);
        Nats {
            child,
            port,
            dir: dir.to_path_buf(),
            starts: 1,
        }
    }

    fn spawn(port: u16, dir: &Path, n: usize) -> Child {
        let log = std::fs::File::create(dir.join(format!("nats-{n}.log"))).unwrap();
        let child = Command::new(nats_server_bin())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.join("jetstream"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, as systemd does) and starts it again on the same store.
    fn restart(&mut self) {
        signal(&self.child, "TERM");
        self.child.wait().unwrap();
        self.child = Self::spawn(self.port, &self.dir, self.starts);
        self.starts += 1;
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary under test; `PITCHSIDE_TEST_BIN` overrides it (a copy, where checkouts share
/// a target dir and another's build can replace the binary mid-run).
fn bin() -> PathBuf {
    std::env::var_os("PITCHSIDE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_pitchside").into())
}

/// A `pitchside` command with the test deployment at 160 px, stride 2, on the CPU.
fn pitchside(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(root())
        .env("IMG_SIZE", "160")
        .env("FRAME_STRIDE", "2")
        .env("PITCHSIDE_DEVICE", "cpu")
        .env_remove("PITCHSIDE_NATS_URL")
        .env("RUST_LOG", "info");
    c
}

/// A worker process; its log goes to `dir/NAME.log`.
struct Worker {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Worker {
    fn start(nats: &Nats, name: &str, dir: &Path) -> Worker {
        let config = root().join("tests/fixtures/deployments/vtest-320.yaml");
        Worker::start_with(nats, name, dir, &config)
    }

    fn start_with(nats: &Nats, name: &str, dir: &Path, config: &Path) -> Worker {
        let log = dir.join(format!("{name}.log"));
        let child = pitchside(&["worker", "--nats", &nats.url(), "--name", name])
            .arg("--config")
            .arg(config)
            .args(["--ack-wait", "2", "--max-deliver", "3"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Worker {
            child,
            name: name.into(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn queue(nats: &Nats) -> Connection {
    Connection {
        url: nats.url(),
        ..Default::default()
    }
}

fn records(nats: &Nats) -> BTreeMap<String, Record> {
    let c = queue(nats);
    pitchside_worker::block_on(async {
        let q = Queue::connect(&c, QueueSettings::default()).await?;
        q.records().await
    })
    .unwrap()
    .unwrap()
}

/// Polls the job records until `done` says so, failing after `limit` with the logs.
fn wait_for(
    nats: &Nats,
    workers: &[&Worker],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&BTreeMap<String, Record>) -> bool,
) -> BTreeMap<String, Record> {
    let deadline = Instant::now() + limit;
    loop {
        let r = records(nats);
        if done(&r) {
            return r;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = workers
                .iter()
                .map(|w| format!("--- {} ---\n{}", w.name, w.log()))
                .collect();
            panic!(
                "{what}: not after {limit:?}\nrecords: {r:#?}\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first `frames` frames of the real clip, as MJPG (OpenCV's own encoder).
fn clip_prefix(out: &Path, frames: usize) {
    use opencv::prelude::*;
    use opencv::videoio::{CAP_ANY, VideoCapture, VideoWriter};
    let mut cap = VideoCapture::from_file(vtest().as_os_str(), CAP_ANY).unwrap();
    let fourcc = VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
    let mut w = VideoWriter::new(
        out.as_os_str(),
        fourcc,
        25.0,
        opencv::core::Size::new(768, 576),
        true,
    )
    .unwrap();
    let mut frame = opencv::core::Mat::default();
    for _ in 0..frames {
        assert!(
            cap.read(&mut frame).unwrap(),
            "vtest.avi has {frames} frames"
        );
        w.write(&frame).unwrap();
    }
    w.release().unwrap();
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const JOBS: usize = 10;
const CLIP_FRAMES: usize = 120;

/// Ten jobs on two workers: one worker SIGKILLed mid-job (its job is redelivered and
/// finished by another), the NATS server restarted mid-run (the workers reconnect and
/// finish), a poison job dead-lettered with its error; every job ends with exactly one
/// stored result.
#[test]
fn jobs_survive_a_killed_worker_and_a_restarted_server_and_poison_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = d.join("clip.avi");
    clip_prefix(&clip, CLIP_FRAMES);
    std::fs::write(
        d.join("notes.avi"),
        "these are match notes, not a video\n".repeat(50),
    )
    .unwrap();
    let mut manifest = String::from("# the test's jobs\n");
    for i in 0..JOBS {
        manifest.push_str(&format!(
            "{{\"source\": \"clip.avi\", \"id\": \"job-{i}\"}}\n"
        ));
    }
    manifest.push_str("{\"source\": \"notes.avi\", \"id\": \"poison\"}\n");
    std::fs::write(d.join("jobs.txt"), manifest).unwrap();

    let mut nats = Nats::start(d);
    let a = Worker::start(&nats, "worker-a", d);
    let b = Worker::start(&nats, "worker-b", d);

    let out = ok(&pitchside(&["submit", "--nats", &nats.url(), "--manifest"])
        .arg(d.join("jobs.txt"))
        .output()
        .unwrap());
    assert_eq!(out.matches("\tqueued\t").count(), JOBS + 1, "{out}");
    // Submitting again queues nothing: the ids are known.
    let again = ok(&pitchside(&["submit", "--nats", &nats.url(), "--manifest"])
        .arg(d.join("jobs.txt"))
        .output()
        .unwrap());
    assert_eq!(
        again.matches("\talready known\t").count(),
        JOBS + 1,
        "{again}"
    );

    // A job running on worker A: kill A there and then.
    let limit = Duration::from_secs(120);
    let running_on_a = |r: &BTreeMap<String, Record>| {
        r.iter()
            .find(|(id, rec)| {
                id.starts_with("job-")
                    && rec.state == State::Running
                    && rec.worker.as_deref() == Some("worker-a")
            })
            .map(|(id, _)| id.clone())
    };
    let r = wait_for(&nats, &[&a, &b], limit, "a job running on worker A", |r| {
        running_on_a(r).is_some()
    });
    let mut a = a;
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    let killed_job = running_on_a(&r).unwrap();
    let killed_state = records(&nats)[&killed_job].clone();
    assert_ne!(
        killed_state.state,
        State::Done,
        "the job finished before the kill"
    );

    // The server restarted while worker B has a job running.
    wait_for(&nats, &[&a, &b], limit, "a job running on worker B", |r| {
        r.values()
            .any(|rec| rec.state == State::Running && rec.worker.as_deref() == Some("worker-b"))
    });
    nats.restart();
    // A second worker again, so that the rest goes at the same pace.
    let c = Worker::start(&nats, "worker-c", d);

    let finished = wait_for(
        &nats,
        &[&a, &b, &c],
        limit,
        "every job done or failed",
        |r| {
            r.len() == JOBS + 1
                && r.values()
                    .all(|rec| matches!(rec.state, State::Done | State::Failed))
        },
    );

    // Every job done once, with exactly one stored result; the killed one by another worker.
    for i in 0..JOBS {
        let id = format!("job-{i}");
        let rec = &finished[&id];
        assert_eq!(rec.state, State::Done, "{id}: {rec:?}");
        assert!(!rec.partial, "{id}: {rec:?}");
    }
    let killed = &finished[&killed_job];
    assert_ne!(killed.worker.as_deref(), Some("worker-a"), "{killed:?}");
    assert!(killed.attempt >= 2, "{killed:?}");
    let c_conn = queue(&nats);
    let (names, dead, result) = pitchside_worker::block_on(async {
        let q = Queue::connect(&c_conn, QueueSettings::default()).await?;
        let names = q.result_names().await?;
        let dead: Vec<DeadLetter> = q.dead_letters().await?;
        let result = q.result(&killed_job).await?;
        Ok::<_, pitchside_worker::WorkerError>((names, dead, result))
    })
    .unwrap()
    .unwrap();
    let expected: BTreeMap<String, usize> = (0..JOBS).map(|i| (format!("job-{i}"), 1)).collect();
    assert_eq!(
        names, expected,
        "exactly one result per job, none for the poison"
    );
    let result: serde_json::Value = serde_json::from_slice(&result.unwrap()).unwrap();
    assert_eq!(result["challenge_id"], killed_job.as_str());
    assert_eq!(result["frames"].as_array().unwrap().len(), CLIP_FRAMES);

    // The poison job: failed on each of its 3 deliveries, then dead-lettered with its error.
    let poison = &finished["poison"];
    assert_eq!(poison.state, State::Failed, "{poison:?}");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].id, "poison");
    assert_eq!(dead[0].attempts, 3);
    assert!(
        dead[0].error.contains("notes.avi")
            && (dead[0].error.contains("not a video") || dead[0].error.contains("no decodable")),
        "{}",
        dead[0].error
    );

    // `status` says the same, and writes the results out; --wait fails on the failed job.
    let results = d.join("results");
    let o = pitchside(&["status", "--nats", &nats.url(), "--wait", "--timeout", "30"])
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{stdout}");
    assert!(
        stdout.contains("0 queued, 0 running, 10 done, 1 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("failed poison"), "{stdout}");
    assert_eq!(std::fs::read_dir(&results).unwrap().count(), JOBS);

    // A failed job may be submitted again (a new message, past the deduplication); a done
    // one is not queued twice.
    let again = ok(&pitchside(&["submit", "--nats", &nats.url(), "--manifest"])
        .arg(d.join("jobs.txt"))
        .output()
        .unwrap());
    assert_eq!(again.matches("\tqueued\t").count(), 1, "{again}");
    assert!(again.contains("poison\tqueued"), "{again}");
    assert_ne!(records(&nats)["poison"].state, State::Failed);

    // Worker B saw the server go away and came back (the client's events, logged).
    let log = b.log();
    assert!(log.contains("nats: disconnected"), "{log}");
    assert!(log.matches("nats: connected").count() >= 2, "{log}");
    // The job killed with worker A was finished by another; every job ran to its end once.
    let logs = format!("{}{}{}", a.log(), b.log(), c.log());
    let done_lines = logs.lines().filter(|l| l.contains("job done")).count();
    assert_eq!(done_lines, JOBS, "{logs}");
    assert!(
        !a.log()
            .lines()
            .any(|l| l.contains("job done") && l.contains(&killed_job)),
        "{logs}"
    );
}

/// SIGTERM drains: the running job finishes (or is handed back), no new one is taken, the
/// worker exits 0.
#[test]
fn a_worker_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = d.join("clip.avi");
    clip_prefix(&clip, CLIP_FRAMES);
    let nats = Nats::start(d);
    let mut w = Worker::start(&nats, "worker-t", d);
    for i in 0..3 {
        ok(
            &pitchside(&["submit", "--nats", &nats.url(), "--id", &format!("t-{i}")])
                .arg(&clip)
                .output()
                .unwrap(),
        );
    }
    wait_for(
        &nats,
        &[&w],
        Duration::from_secs(120),
        "a running job",
        |r| r.values().any(|rec| rec.state == State::Running),
    );
    signal(&w.child, "TERM");
    let status = w.child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", w.log());
    let r = records(&nats);
    let states: Vec<State> = r.values().map(|rec| rec.state).collect();
    // The job it had finished; the others were never taken.
    assert_eq!(
        states.iter().filter(|s| **s == State::Done).count(),
        1,
        "{r:#?}\n{}",
        w.log()
    );
    assert_eq!(
        states.iter().filter(|s| **s == State::Queued).count(),
        2,
        "{r:#?}"
    );
    assert!(w.log().contains("taking no new job"), "{}", w.log());
    // It warmed its pipeline up (service.warm_up_frame, 1920x1080 by default) before the
    // first job, as `serve` does before it listens.
    assert!(w.log().contains("warm-up done"), "{}", w.log());
}

/// A queued job is admitted as `run` and `serve` admit a video: one over the profile's
/// `max_frame_pixels` (vtest.avi's 768x576 against 400,000 here) is refused before a frame
/// is analysed, and dead-lettered at once (no retry can make it smaller). The worker used
/// to analyse it to the end and mark it done.
#[test]
fn a_worker_refuses_a_video_over_the_profiles_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = root().join("tests/fixtures/deployments/vtest-320.yaml");
    let yaml = std::fs::read_to_string(&fixture)
        .unwrap()
        .replace("../../../assets/", &format!("{}/assets/", root().display()))
        + "    max_frame_pixels: 400000\n";
    let config = d.join("small-frames.yaml");
    std::fs::write(&config, yaml).unwrap();
    let nats = Nats::start(d);
    let w = Worker::start_with(&nats, "worker-bounds", d, &config);
    ok(
        &pitchside(&["submit", "--nats", &nats.url(), "--id", "too-large"])
            .arg(vtest())
            .output()
            .unwrap(),
    );
    let r = wait_for(
        &nats,
        &[&w],
        Duration::from_secs(120),
        "the oversized job failed",
        |r| {
            r.get("too-large")
                .is_some_and(|rec| rec.state == State::Failed)
        },
    );
    let rec = &r["too-large"];
    assert_eq!(rec.attempt, 1, "{rec:#?}");
    let error = rec.error.clone().unwrap_or_default();
    assert!(
        error.contains(
            "the video is 768x576 (442368 pixels a frame), above the profile's \
             max_frame_pixels, 400000"
        ),
        "{error}"
    );
    assert!(!w.log().contains("job done"), "{}", w.log());
}
