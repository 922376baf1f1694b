//! Segment-parallel decoding.
//!
//! A demuxer thread reads the packets and cuts them at keyframes into segments of at least
//! `min_packets`; each segment goes to the next free worker, which decodes it from its
//! keyframe with a single-threaded decoder of its own (reset between segments) and converts
//! the frames the stride wants into a channel of the segment's own, sized to hold all of
//! them (up to `prefetch`) so that no worker waits for the consumer while an earlier
//! segment is still being decoded. A reassembler thread takes the segments' channels in source order and forwards
//! their frames, so the consumer sees exactly what one decoder would yield.
//!
//! A segment's frames are numbered from the packets before it (one frame per packet, as
//! every supported container stores video). A segment that decodes to fewer frames than it
//! has packets, or whose decoder fails, ends the run after its last good frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::av;
use super::{DecodedFrame, DecoderEvent, Plan, ReadErrors};

/// A run of packets starting at a keyframe.
struct Segment {
    /// Source frame number of its first frame.
    base: u64,
    packets: Vec<ffmpeg_next::Packet>,
    out: SyncSender<SegmentEvent>,
}

enum SegmentEvent {
    Frame(DecodedFrame),
    /// The segment is done: `decoded` frames, all good; `error` when it ended early.
    End {
        decoded: u64,
        error: Option<String>,
        busy: Duration,
    },
}

/// What the demuxer hands the reassembler, in source order.
enum Ordered {
    Segment(u64, Receiver<SegmentEvent>),
    /// No more segments; `busy` is the demuxer's own time.
    End {
        busy: Duration,
    },
}

/// Starts the demuxer, `workers` segment decoders and the reassembler.
pub(super) fn spawn(
    input: av::Input,
    plan: Plan,
    workers: usize,
    tx: SyncSender<DecoderEvent>,
    stop: Arc<AtomicBool>,
    pool: av::Pool,
) -> Result<Vec<JoinHandle<()>>, String> {
    // The segment being consumed, `workers - 1` queued behind it and the one the demuxer
    // is filling: `workers + 1` segments exist at a time, each holding at most `prefetch`
    // converted frames (its channel's capacity).
    let (work_tx, work_rx) = sync_channel::<Segment>(workers);
    let (order_tx, order_rx) = sync_channel::<Ordered>(workers.saturating_sub(1).max(1));
    let work_rx = Arc::new(Mutex::new(work_rx));
    // The consumer's queue spread over the workers, and never shorter than a keyframe
    // interval (the demuxer only cuts at keyframes).
    let min_packets = (plan.prefetch as u64 * plan.stride)
        .div_ceil(workers as u64)
        .max(1);
    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .spawn(f)
            .map_err(|e| format!("cannot start a decoder thread: {e}"))
    };
    let mut handles = Vec::new();
    for i in 0..workers {
        let work_rx = work_rx.clone();
        let params = input.params.clone();
        let plan = plan.clone();
        let pool = pool.clone();
        let stop = stop.clone();
        handles.push(spawn(
            format!("pitchside-decode-{i}"),
            Box::new(move || worker(work_rx, params, plan, pool, stop)),
        )?);
    }
    {
        let plan = plan.clone();
        let stop = stop.clone();
        handles.push(spawn(
            "pitchside-demux".into(),
            Box::new(move || demux(input, plan, min_packets, work_tx, order_tx, stop)),
        )?);
    }
    handles.push(spawn(
        "pitchside-reassemble".into(),
        Box::new(move || reassemble(order_rx, plan, tx, stop)),
    )?);
    Ok(handles)
}

fn demux(
    mut input: av::Input,
    plan: Plan,
    min_packets: u64,
    work: SyncSender<Segment>,
    order: SyncSender<Ordered>,
    stop: Arc<AtomicBool>,
) {
    let t0 = Instant::now();
    let mut waited = Duration::ZERO;
    let mut base: u64 = 0;
    let mut packets: Vec<ffmpeg_next::Packet> = Vec::new();
    let mut reads = ReadErrors::default();
    // Hands on the packets so far as one segment; false when the run is over.
    let dispatch = |base: u64, packets: Vec<ffmpeg_next::Packet>, waited: &mut Duration| {
        let frames = packets.len() as u64;
        let first_wanted = base.div_ceil(plan.stride) * plan.stride;
        let wanted = if first_wanted < base + frames {
            (base + frames - 1 - first_wanted) / plan.stride + 1
        } else {
            0
        };
        // A whole segment's frames where the queue allows, so that its worker never waits
        // for the consumer to reach it; beyond that it waits (memory stays bounded).
        let (out, rx) = sync_channel((wanted as usize).min(plan.prefetch) + 1);
        let t = Instant::now();
        let ok = order.send(Ordered::Segment(base, rx)).is_ok()
            && work.send(Segment { base, packets, out }).is_ok();
        *waited += t.elapsed();
        ok
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut packet = ffmpeg_next::Packet::empty();
        match packet.read(&mut input.input) {
            Ok(()) => {
                reads.ok();
                if packet.stream() != input.stream || packet.size() == 0 {
                    continue;
                }
                if packet.is_key() && packets.len() as u64 >= min_packets {
                    let n = packets.len() as u64;
                    if !dispatch(base, std::mem::take(&mut packets), &mut waited) {
                        return;
                    }
                    base += n;
                }
                if base + packets.len() as u64 >= plan.limit {
                    break;
                }
                packets.push(packet);
            }
            Err(e) if reads.retry(&e) => continue,
            Err(_) => break,
        }
    }
    if !packets.is_empty() && !dispatch(base, packets, &mut waited) {
        return;
    }
    let _ = order.send(Ordered::End {
        busy: t0.elapsed().saturating_sub(waited),
    });
}

fn worker(
    work: Arc<Mutex<Receiver<Segment>>>,
    params: ffmpeg_next::codec::Parameters,
    plan: Plan,
    pool: av::Pool,
    stop: Arc<AtomicBool>,
) {
    let mut conv = av::Converter::new(plan.outputs.clone(), pool);
    let mut decoder: Option<av::FrameDecoder> = None;
    loop {
        // Holding the lock while waiting is what hands each segment to one free worker.
        let segment = match work.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(s) => s,
            Err(_) => return,
        };
        let t0 = Instant::now();
        let dec = match &mut decoder {
            Some(d) => {
                d.reset();
                Ok(d)
            }
            None => av::FrameDecoder::new(&params, 1, false).map(|d| decoder.insert(d)),
        };
        let (decoded, error, waited) = match dec {
            Ok(dec) => decode_segment(dec, &mut conv, &segment, &plan, &stop),
            Err(e) => (0, Some(e), Duration::ZERO),
        };
        let _ = segment.out.send(SegmentEvent::End {
            decoded,
            error,
            busy: t0.elapsed().saturating_sub(waited),
        });
    }
}

/// Decodes one segment: (frames decoded, why it stopped short, time spent waiting to send).
fn decode_segment(
    dec: &mut av::FrameDecoder,
    conv: &mut av::Converter,
    segment: &Segment,
    plan: &Plan,
    stop: &AtomicBool,
) -> (u64, Option<String>, Duration) {
    let mut decoded: u64 = 0;
    let mut waited = Duration::ZERO;
    let total = segment.packets.len() as u64;
    let fail = |decoded: u64, what: String| {
        Some(format!(
            "frame {}: {what} (corrupt segment of frames {}..{})",
            segment.base + decoded,
            segment.base,
            segment.base + total
        ))
    };
    let mut packets = segment.packets.iter();
    loop {
        if stop.load(Ordering::Relaxed) {
            return (decoded, None, waited);
        }
        let packet = packets.next();
        if let Err(e) = dec.send(packet) {
            return (decoded, fail(decoded, format!("undecodable ({e})")), waited);
        }
        loop {
            match dec.receive() {
                Ok(Some(frame)) => {
                    let n = segment.base + decoded;
                    if decoded == total {
                        return (
                            decoded,
                            fail(decoded, "more frames than packets".into()),
                            waited,
                        );
                    }
                    if let Some(why) = plan.oversized(frame, n) {
                        return (decoded, Some(why), waited);
                    }
                    decoded += 1;
                    if !n.is_multiple_of(plan.stride) {
                        continue;
                    }
                    let images = match conv.convert(frame) {
                        Ok(i) => i,
                        Err(e) => return (decoded - 1, fail(decoded - 1, e), waited),
                    };
                    let t = Instant::now();
                    let sent = segment.out.send(SegmentEvent::Frame(DecodedFrame {
                        frame_number: n,
                        images,
                    }));
                    waited += t.elapsed();
                    if sent.is_err() {
                        // The consumer is gone: nothing more of this segment is wanted.
                        return (decoded, None, waited);
                    }
                }
                Ok(None) => break,
                Err(e) => return (decoded, fail(decoded, format!("undecodable ({e})")), waited),
            }
        }
        if packet.is_none() {
            break;
        }
    }
    if decoded < total {
        let e = fail(
            decoded,
            format!("only {decoded} of its {total} frames decoded"),
        );
        return (decoded, e, waited);
    }
    (decoded, None, waited)
}

fn reassemble(
    order: Receiver<Ordered>,
    plan: Plan,
    tx: SyncSender<DecoderEvent>,
    stop: Arc<AtomicBool>,
) {
    let mut n: u64 = 0;
    let mut busy = Duration::ZERO;
    let mut error = None;
    'segments: loop {
        let (base, rx) = match order.recv() {
            Ok(Ordered::Segment(base, rx)) => (base, rx),
            Ok(Ordered::End { busy: demux }) => {
                busy += demux;
                break;
            }
            Err(_) => {
                if !stop.load(Ordering::Relaxed) {
                    error = Some(format!("the demuxer stopped unexpectedly at frame {n}"));
                }
                break;
            }
        };
        debug_assert_eq!(base, n, "segments arrive in order and back to back");
        loop {
            match rx.recv() {
                Ok(SegmentEvent::Frame(f)) => {
                    if tx.send(DecoderEvent::Frame(f)).is_err() {
                        return;
                    }
                }
                Ok(SegmentEvent::End {
                    decoded,
                    error: e,
                    busy: b,
                }) => {
                    n = base + decoded;
                    busy += b;
                    if e.is_some() {
                        error = e;
                        break 'segments;
                    }
                    break;
                }
                Err(_) => {
                    error = Some(format!(
                        "a decoder thread stopped unexpectedly at frame {n}"
                    ));
                    break 'segments;
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    // Unblock the demuxer and the workers before the end: they see their channels closed.
    drop(order);
    let stopped = stop.load(Ordering::Relaxed) && n < plan.limit && error.is_none();
    let _ = tx.send(plan.end(n, error, stopped, busy));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Image;
    use crate::video::Output;

    fn plan(expected: u64) -> Plan {
        Plan {
            stride: 1,
            limit: u64::MAX,
            expected,
            prefetch: 8,
            outputs: vec![Output::Full],
            check_time: Duration::ZERO,
            max_frame_pixels: u64::MAX,
        }
    }

    fn frame(n: u64) -> SegmentEvent {
        SegmentEvent::Frame(DecodedFrame {
            frame_number: n,
            images: vec![Image {
                data: vec![n as u8; 3],
                width: 1,
                height: 1,
            }],
        })
    }

    fn end(decoded: u64, error: Option<&str>) -> SegmentEvent {
        SegmentEvent::End {
            decoded,
            error: error.map(String::from),
            busy: Duration::from_millis(1),
        }
    }

    /// Segments finishing in any order come out in source order; the first corrupt one
    /// ends the run after its last good frame, whatever later segments decoded.
    #[test]
    fn segments_are_reassembled_in_order_up_to_the_first_corrupt_one() {
        let (order_tx, order_rx) = sync_channel(8);
        let (tx, rx) = sync_channel(64);
        let segs: Vec<_> = (0..4).map(|_| sync_channel::<SegmentEvent>(16)).collect();
        // Later segments are complete before earlier ones start.
        for n in 8..12 {
            segs[2].0.send(frame(n)).unwrap();
        }
        segs[2].0.send(end(4, None)).unwrap();
        for n in 12..14 {
            segs[3].0.send(frame(n)).unwrap();
        }
        segs[3].0.send(end(2, None)).unwrap();
        for n in 4..6 {
            segs[1].0.send(frame(n)).unwrap();
        }
        segs[1]
            .0
            .send(end(
                2,
                Some("frame 6: undecodable (corrupt segment of frames 4..8)"),
            ))
            .unwrap();
        for n in 0..4 {
            segs[0].0.send(frame(n)).unwrap();
        }
        segs[0].0.send(end(4, None)).unwrap();
        let bases = [0, 4, 8, 12];
        for (s, base) in segs.into_iter().zip(bases) {
            order_tx.send(Ordered::Segment(base, s.1)).unwrap();
        }
        order_tx
            .send(Ordered::End {
                busy: Duration::ZERO,
            })
            .unwrap();
        reassemble(order_rx, plan(14), tx, Arc::new(AtomicBool::new(false)));
        let mut numbers = Vec::new();
        let (frames_read, error) = loop {
            match rx.recv().unwrap() {
                DecoderEvent::Frame(f) => {
                    assert_eq!(f.images[0].data[0] as u64, f.frame_number);
                    numbers.push(f.frame_number)
                }
                DecoderEvent::End {
                    frames_read, error, ..
                } => break (frames_read, error),
            }
        };
        assert_eq!(numbers, (0..6).collect::<Vec<u64>>());
        assert_eq!(frames_read, 6);
        assert!(error.unwrap().contains("corrupt segment of frames 4..8"));
    }

    #[test]
    fn a_short_input_is_reported_as_truncated_and_a_vanished_worker_as_such() {
        let (order_tx, order_rx) = sync_channel(8);
        let (tx, rx) = sync_channel(64);
        let (s0, r0) = sync_channel(16);
        let (s1, r1) = sync_channel::<SegmentEvent>(16);
        s0.send(frame(0)).unwrap();
        s0.send(end(1, None)).unwrap();
        order_tx.send(Ordered::Segment(0, r0)).unwrap();
        order_tx
            .send(Ordered::End {
                busy: Duration::ZERO,
            })
            .unwrap();
        reassemble(order_rx, plan(10), tx, Arc::new(AtomicBool::new(false)));
        assert!(matches!(rx.recv().unwrap(), DecoderEvent::Frame(_)));
        match rx.recv().unwrap() {
            DecoderEvent::End {
                frames_read, error, ..
            } => {
                assert_eq!(frames_read, 1);
                assert!(error.unwrap().contains("frame 1 of 10 (truncated"));
            }
            e => panic!("{e:?}"),
        }
        // A worker that died without its End (a panic) ends the run there.
        let (order_tx, order_rx) = sync_channel(8);
        let (tx, rx) = sync_channel(64);
        s1.send(frame(0)).unwrap();
        drop(s1);
        order_tx.send(Ordered::Segment(0, r1)).unwrap();
        reassemble(order_rx, plan(10), tx, Arc::new(AtomicBool::new(false)));
        assert!(matches!(rx.recv().unwrap(), DecoderEvent::Frame(_)));
        match rx.recv().unwrap() {
            DecoderEvent::End { error, .. } => {
                assert!(error.unwrap().contains("stopped unexpectedly"));
            }
            e => panic!("{e:?}"),
        }
    }
}
