//! A pool of loaded pipelines: one per slot, each slot a device (`cuda:0`, `cuda:1`, …)
//! or a share of the CPU cores. A run takes a free pipeline ([`PipelinePool::acquire`]),
//! so N slots run N videos at once; memory is bounded by the slots (each pipeline keeps
//! its models and one batch's buffers), never by the requests.
//!
//! The slots come from the deployment's `devices:` and the profile's
//! `pipelines_per_device` ([`plan_slots`]). CPU slots split `cpu_threads` (0 = every core)
//! between them: each has a rayon pool of its own, and its pipeline runs inside it
//! (`ThreadPool::install`), so the executor's parallel loops stay on that slot's threads.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::admission::{AdmissionError, AdmittedVideo};
use crate::config::{Deployment, DeviceId, DeviceList, EffectiveConfig, Profile};
use crate::device::{Backend, DeviceProbe, ProbeResult};
use crate::pipeline::{Pipeline, PipelineError, Response, RunOptions, RunStats};

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// `devices:` names something this machine or this deployment cannot use.
    #[error("devices: {0}")]
    Devices(String),
    #[error("the CPU thread pool for {slot}: {message}")]
    Threads { slot: String, message: String },
    #[error("loading the pipeline on {slot}: {source}")]
    Load {
        slot: String,
        source: Box<PipelineError>,
    },
    #[error("{slot}: {source}")]
    Run {
        slot: String,
        source: Box<PipelineError>,
    },
}

/// One slot to load: its device, and for CPU slots how many threads it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSpec {
    pub device: DeviceId,
    /// The n-th pipeline on its device (0 with one pipeline per device).
    pub ordinal: usize,
    /// Threads of the slot's own rayon pool; `None` leaves it on the global pool (GPU
    /// slots, whose host work is light).
    pub threads: Option<usize>,
}

impl SlotSpec {
    /// `cuda:1`, or `cpu#0`, `cpu#1` when a device has several pipelines.
    pub fn label(&self, per_device: usize) -> String {
        if per_device > 1 {
            format!("{}#{}", self.device, self.ordinal)
        } else {
            self.device.to_string()
        }
    }
}

/// The slots of a deployment: the devices of `devices` (`None`: the selected device
/// alone), each `profile.pipelines_per_device` times. Every device must be of `backend`,
/// the one selected; GPUs are checked against what `probe` finds. CPU slots share
/// `profile.cpu_threads` (0: `available` cores) as evenly as they can, at least one each.
pub fn plan_slots(
    devices: Option<&DeviceList>,
    device: DeviceId,
    profile: &Profile,
    probe: &dyn DeviceProbe,
    available: usize,
) -> Result<Vec<SlotSpec>, PoolError> {
    let backend = device.backend;
    let gpu_count = || match probe.probe(backend) {
        ProbeResult::Found(names) => Ok(names.len()),
        ProbeResult::Missing(why) => Err(PoolError::Devices(format!("no {backend} device: {why}"))),
    };
    let ids: Vec<DeviceId> = match devices {
        None => vec![device],
        Some(DeviceList::Auto) if backend.is_cuda() => (0..gpu_count()?)
            .map(|i| DeviceId::new(backend, i))
            .collect(),
        // WGPU runs on its default adapter; MPS and the CPU are one device.
        Some(DeviceList::Auto) => vec![DeviceId::new(backend, 0)],
        Some(DeviceList::Listed(list)) => {
            for id in list {
                if id.backend != backend {
                    return Err(PoolError::Devices(format!(
                        "{id} is listed, but the device selected is {backend} (`device:`, \
                         --device or PITCHSIDE_DEVICE); list {backend} devices or select {}",
                        id.backend
                    )));
                }
                if backend == Backend::Wgpu && id.index > 0 {
                    return Err(PoolError::Devices(format!(
                        "{id}: WGPU runs on its default adapter only; list `wgpu`"
                    )));
                }
            }
            if backend.is_cuda() {
                let n = gpu_count()?;
                if let Some(id) = list.iter().find(|id| id.index >= n) {
                    return Err(PoolError::Devices(format!(
                        "{id} is listed, but the driver reports {n} CUDA device(s) \
                         ({backend}:0 to {backend}:{})",
                        n.saturating_sub(1)
                    )));
                }
            }
            list.clone()
        }
    };
    let per_device = profile.pipelines_per_device.max(1) as usize;
    let mut slots: Vec<SlotSpec> = ids
        .iter()
        .flat_map(|&device| {
            (0..per_device).map(move |ordinal| SlotSpec {
                device,
                ordinal,
                threads: None,
            })
        })
        .collect();
    if backend.is_cpu() {
        let total = match profile.cpu_threads {
            0 => available.max(1),
            n => n as usize,
        };
        let n = slots.len();
        for (i, s) in slots.iter_mut().enumerate() {
            // The remainder goes to the first slots: 5 threads over 2 slots are 3 + 2.
            s.threads = Some((total / n + usize::from(i < total % n)).max(1));
        }
    }
    Ok(slots)
}

/// A run of a pooled pipeline, for metrics and tests: which slot, from when to when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSpan {
    pub slot: usize,
    pub start: Instant,
    pub end: Instant,
}

/// How many finished runs [`PipelinePool::recent_runs`] keeps.
const RECENT_RUNS: usize = 64;

/// A slot's state, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotStatus {
    pub label: String,
    pub device: DeviceId,
    pub threads: Option<usize>,
    pub busy: bool,
    /// Finished runs, and how many of them failed (an error, not a partial answer).
    pub runs: u64,
    pub failures: u64,
    /// Time spent running, all runs together.
    pub busy_s: f64,
}

struct Slot {
    spec: SlotSpec,
    label: String,
    pipeline: Mutex<Pipeline>,
    threads: Option<rayon::ThreadPool>,
}

impl Slot {
    /// Runs `f` on the slot's pipeline, on the slot's threads.
    fn with_pipeline<R: Send>(&self, f: impl FnOnce(&mut Pipeline) -> R + Send) -> R {
        // A panic in an earlier run poisons the lock, not the models: keep serving.
        let mut guard = self.pipeline.lock().unwrap_or_else(|e| e.into_inner());
        let p: &mut Pipeline = &mut guard;
        match &self.threads {
            Some(pool) => pool.install(|| f(p)),
            None => f(p),
        }
    }
}

#[derive(Default)]
struct PoolState {
    /// Free slot indices, lowest first.
    free: Vec<usize>,
    /// Callers waiting in [`PipelinePool::acquire`].
    waiting: usize,
    /// Per slot, in slot order.
    counters: Vec<SlotCounters>,
    recent: VecDeque<RunSpan>,
}

/// A slot's running state and totals ([`SlotStatus`] without the fixed parts).
#[derive(Debug, Clone, Copy, Default)]
struct SlotCounters {
    busy: bool,
    runs: u64,
    failures: u64,
    busy_s: f64,
}

/// Loaded pipelines, handed out one run at a time.
pub struct PipelinePool {
    slots: Vec<Slot>,
    /// The pipelines' profile (one deployment, one profile), for [`PipelinePool::admit`]
    /// without waiting for a pipeline.
    profile: Profile,
    state: Mutex<PoolState>,
    freed: Condvar,
}

impl PipelinePool {
    /// Loads one pipeline per slot (in order; the first error stops it).
    pub fn load(
        deployment: &Deployment,
        effective: &EffectiveConfig,
        specs: Vec<SlotSpec>,
    ) -> Result<PipelinePool, PoolError> {
        if specs.is_empty() {
            return Err(PoolError::Devices("no pipeline to load".into()));
        }
        let per_device = specs.iter().map(|s| s.ordinal + 1).max().unwrap_or(1);
        // LibTorch's CPU threads are one pool for the process (OpenMP's), which a slot's
        // rayon pool does not bound: torch:cpu slots get the smallest share, so that two
        // pipelines on two cores do not each run on both.
        #[cfg(feature = "torch")]
        if let Some(n) = specs
            .iter()
            .filter(|s| s.device.backend == Backend::TorchCpu)
            .filter_map(|s| s.threads)
            .min()
        {
            pitchside_models::torch::set_cpu_threads(n);
            tracing::info!(threads = n, "LibTorch CPU threads");
        }
        let mut slots = Vec::with_capacity(specs.len());
        for spec in specs {
            let label = spec.label(per_device);
            let threads = match spec.threads {
                None => None,
                Some(n) => Some(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .thread_name({
                            let label = label.clone();
                            move |i| format!("pitchside-{label}-{i}")
                        })
                        .build()
                        .map_err(|e| PoolError::Threads {
                            slot: label.clone(),
                            message: e.to_string(),
                        })?,
                ),
            };
            let pipeline = Pipeline::load_on(deployment.clone(), effective.clone(), spec.device)
                .map_err(|e| PoolError::Load {
                    slot: label.clone(),
                    source: Box::new(e),
                })?;
            tracing::info!(slot = %label, threads = ?spec.threads, "pipeline loaded");
            slots.push(Slot {
                spec,
                label,
                pipeline: Mutex::new(pipeline),
                threads,
            });
        }
        let n = slots.len();
        Ok(PipelinePool {
            profile: effective.profile.clone(),
            state: Mutex::new(PoolState {
                free: (0..n).rev().collect(),
                counters: vec![SlotCounters::default(); n],
                ..Default::default()
            }),
            slots,
            freed: Condvar::new(),
        })
    }

    /// The pool of one already loaded pipeline on the global thread pool (`device`).
    pub fn single(pipeline: Pipeline, device: DeviceId) -> PipelinePool {
        let spec = SlotSpec {
            device,
            ordinal: 0,
            threads: None,
        };
        PipelinePool {
            profile: pipeline.profile().clone(),
            slots: vec![Slot {
                label: spec.label(1),
                spec,
                pipeline: Mutex::new(pipeline),
                threads: None,
            }],
            state: Mutex::new(PoolState {
                free: vec![0],
                counters: vec![SlotCounters::default()],
                ..Default::default()
            }),
            freed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a video to this pool's pipelines (see [`crate::admission::admit`]).
    pub fn admit(&self, path: &Path) -> Result<AdmittedVideo, AdmissionError> {
        crate::admission::admit(&self.profile, path)
    }

    /// The pipelines' profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The pipeline of a pool of one (what [`crate::load::Slots::One`] loads); `None` for
    /// a pool of several.
    pub fn into_pipeline(mut self) -> Option<Pipeline> {
        if self.slots.len() != 1 {
            return None;
        }
        let slot = self.slots.pop()?;
        Some(
            slot.pipeline
                .into_inner()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// How many pipelines the pool has.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Pipelines free now.
    pub fn free(&self) -> usize {
        self.state().free.len()
    }

    /// Callers waiting for a pipeline now.
    pub fn waiting(&self) -> usize {
        self.state().waiting
    }

    /// Runs `f` on every pipeline at once, each on its own slot's threads (warm-up);
    /// the results in slot order. Waits for each pipeline to be free.
    pub fn each_pipeline<R: Send>(&self, f: impl Fn(&mut Pipeline) -> R + Sync) -> Vec<R> {
        let f = &f;
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .slots
                .iter()
                .map(|slot| s.spawn(move || slot.with_pipeline(f)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// Warms every pipeline up (see [`Pipeline::warm_up`]), all at once; returns the
    /// longest warm-up.
    pub fn warm_up(&self, width: u32, height: u32) -> Result<Duration, PoolError> {
        let mut longest = Duration::ZERO;
        for (slot, r) in self
            .slots
            .iter()
            .zip(self.each_pipeline(|p| p.warm_up(width, height)))
        {
            let took = r.map_err(|e| PoolError::Run {
                slot: slot.label.clone(),
                source: Box::new(e),
            })?;
            longest = longest.max(took);
        }
        Ok(longest)
    }

    /// A free pipeline, if one is free now.
    pub fn try_acquire(&self) -> Option<Lease<'_>> {
        let mut st = self.state();
        let index = st.free.pop()?;
        st.counters[index].busy = true;
        Some(self.lease(index))
    }

    /// Waits for a free pipeline; `None` once `cancel` becomes true first.
    pub fn acquire(&self, cancel: Option<&AtomicBool>) -> Option<Lease<'_>> {
        let cancelled = || cancel.is_some_and(|c| c.load(Ordering::Relaxed));
        let mut st = self.state();
        st.waiting += 1;
        let index = loop {
            if cancelled() {
                st.waiting -= 1;
                return None;
            }
            if let Some(i) = st.free.pop() {
                break i;
            }
            // The cancel flag is a plain atomic: look at it now and then.
            st = self
                .freed
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        st.waiting -= 1;
        st.counters[index].busy = true;
        Some(self.lease(index))
    }

    fn lease(&self, index: usize) -> Lease<'_> {
        Lease {
            pool: self,
            index,
            started: Instant::now(),
            failed: false,
        }
    }

    /// Every slot's state.
    pub fn status(&self) -> Vec<SlotStatus> {
        let st = self.state();
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| SlotStatus {
                label: s.label.clone(),
                device: s.spec.device,
                threads: s.spec.threads,
                busy: st.counters[i].busy,
                runs: st.counters[i].runs,
                failures: st.counters[i].failures,
                busy_s: st.counters[i].busy_s,
            })
            .collect()
    }

    /// The slot labels, in slot order.
    pub fn labels(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.label.clone()).collect()
    }

    /// The last finished runs (at most 64), oldest first.
    pub fn recent_runs(&self) -> Vec<RunSpan> {
        self.state().recent.iter().copied().collect()
    }
}

/// A pipeline taken from the pool; it goes back when the lease is dropped.
pub struct Lease<'a> {
    pool: &'a PipelinePool,
    index: usize,
    started: Instant,
    failed: bool,
}

impl Lease<'_> {
    pub fn slot(&self) -> usize {
        self.index
    }

    /// The slot's label (`cuda:1`, `cpu#0`).
    pub fn label(&self) -> &str {
        &self.pool.slots[self.index].label
    }

    /// Runs an admitted video on this pipeline, on its slot's threads.
    pub fn run(
        &mut self,
        video: &AdmittedVideo,
        opts: &RunOptions<'_>,
    ) -> Result<(Response, RunStats), PipelineError> {
        let r = self.with_pipeline(|p| p.run(video, opts));
        self.failed |= r.is_err();
        r
    }

    /// Runs `f` on this pipeline, on its slot's threads.
    pub fn with_pipeline<R: Send>(&mut self, f: impl FnOnce(&mut Pipeline) -> R + Send) -> R {
        self.started = Instant::now();
        self.pool.slots[self.index].with_pipeline(f)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let end = Instant::now();
        let mut st = self.pool.state();
        let i = self.index;
        let c = &mut st.counters[i];
        c.busy = false;
        c.runs += 1;
        c.failures += u64::from(self.failed);
        c.busy_s += end.duration_since(self.started).as_secs_f64();
        if st.recent.len() == RECENT_RUNS {
            st.recent.pop_front();
        }
        st.recent.push_back(RunSpan {
            slot: i,
            start: self.started,
            end,
        });
        // Lowest index first: the same pipeline serves a quiet service (warm caches).
        st.free.push(i);
        st.free.sort_unstable_by(|a, b| b.cmp(a));
        drop(st);
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProfileName;

    struct Gpus(usize);

    impl DeviceProbe for Gpus {
        fn probe(&self, _: Backend) -> ProbeResult {
            if self.0 == 0 {
                ProbeResult::Missing("no driver".into())
            } else {
                ProbeResult::Found((0..self.0).map(|i| format!("cuda:{i}")).collect())
            }
        }
    }

    fn profile(per_device: u32, cpu_threads: u32) -> Profile {
        Profile {
            pipelines_per_device: per_device,
            cpu_threads,
            ..Profile::defaults(ProfileName::Cpu)
        }
    }

    fn cuda(i: usize) -> DeviceId {
        DeviceId::new(Backend::Cuda, i)
    }

    #[test]
    fn auto_takes_every_gpu_and_lists_are_checked_against_the_driver() {
        let p = profile(1, 0);
        let slots = plan_slots(
            Some(&DeviceList::Auto),
            DeviceId::new(Backend::Cuda, 0),
            &p,
            &Gpus(2),
            8,
        )
        .unwrap();
        let devs: Vec<_> = slots.iter().map(|s| s.device).collect();
        assert_eq!(devs, vec![cuda(0), cuda(1)]);
        assert!(slots.iter().all(|s| s.threads.is_none()));
        let listed = DeviceList::Listed(vec![cuda(1), cuda(2)]);
        let e = plan_slots(
            Some(&listed),
            DeviceId::new(Backend::Cuda, 0),
            &p,
            &Gpus(2),
            8,
        )
        .unwrap_err();
        assert!(e.to_string().contains("cuda:2 is listed"), "{e}");
        let e = plan_slots(
            Some(&DeviceList::Auto),
            DeviceId::new(Backend::Cuda, 0),
            &p,
            &Gpus(0),
            8,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no driver"), "{e}");
        let e = plan_slots(
            Some(&listed),
            DeviceId::new(Backend::Cpu, 0),
            &p,
            &Gpus(2),
            8,
        )
        .unwrap_err();
        assert!(e.to_string().contains("the device selected is cpu"), "{e}");
    }

    #[test]
    fn cpu_pipelines_split_the_threads() {
        let cpu = DeviceList::Listed(vec![DeviceId::new(Backend::Cpu, 0)]);
        let threads = |per, n, avail| {
            plan_slots(
                Some(&cpu),
                DeviceId::new(Backend::Cpu, 0),
                &profile(per, n),
                &Gpus(0),
                avail,
            )
            .unwrap()
            .iter()
            .map(|s| s.threads.unwrap())
            .collect::<Vec<_>>()
        };
        assert_eq!(threads(2, 0, 2), vec![1, 1]);
        assert_eq!(threads(2, 5, 2), vec![3, 2]);
        assert_eq!(threads(3, 2, 16), vec![1, 1, 1]);
        assert_eq!(threads(1, 0, 16), vec![16]);
        let two = plan_slots(
            None,
            DeviceId::new(Backend::Cpu, 0),
            &profile(2, 0),
            &Gpus(0),
            4,
        )
        .unwrap();
        assert_eq!(two[0].label(2), "cpu#0");
        assert_eq!(two[1].label(2), "cpu#1");
        assert_eq!(
            plan_slots(
                None,
                DeviceId::new(Backend::Cuda, 0),
                &profile(1, 0),
                &Gpus(0),
                4
            )
            .unwrap()[0]
                .label(1),
            "cuda:0"
        );
        // A numbered device asked for (`--device cuda:1`, no `devices:`): the pool's one.
        let one = plan_slots(
            None,
            DeviceId::new(Backend::Cuda, 1),
            &profile(2, 0),
            &Gpus(2),
            4,
        )
        .unwrap();
        assert_eq!(
            one.iter().map(|s| s.label(2)).collect::<Vec<_>>(),
            ["cuda:1#0", "cuda:1#1"]
        );
    }
}
