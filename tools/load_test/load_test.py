#!/usr/bin/env python3
"""Bounded load test for the miner service (`pitchside serve`), loopback only, stdlib only.

Starts a loopback HTTP server for the clip, starts the service (a command you give, or by
default the stand-in service, service/examples/load_test_server.rs), fires N challenges at
once, and checks that every answer is either a result (200 with one frame entry per frame and
our challenge id) or a clean 503 (JSON error and a Retry-After header). Reports the service's
peak memory (VmHWM from /proc/<pid>/status), then sends SIGTERM and checks that the service
exits.

The service must accept unsigned requests to loopback URLs: `auth: none` and
`download.allow_private_addresses: true` (the stand-in service sets both).

Exit status: 0 if every answer was a result or a clean 503 and the service exited cleanly.
"""

import argparse
import http.server
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from functools import partial

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, key):
    """A /proc/<pid>/status field in KiB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def stand_in_command():
    """Builds service/examples/load_test_server.rs and returns the command running it."""
    out = subprocess.run(
        ["cargo", "build", "-p", "pitchside-service", "--example", "load_test_server",
         "--message-format=json-render-diagnostics"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    exe = None
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" \
                and msg["target"]["name"] == "load_test_server" and msg.get("executable"):
            exe = msg["executable"]
    if not exe:
        sys.exit("could not find the load_test_server example binary")
    return shlex.quote(exe)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_video(path):
    handler = partial(QuietHandler, directory=os.path.dirname(path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def post_challenge(base, cid, video_url, timeout):
    body = json.dumps({"challenge_id": cid, "type": "gsr", "video_url": video_url,
                       "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
    req = urllib.request.Request(f"{base}/soccer/challenge", data=body,
                                 headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, headers, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    except Exception as e:  # connection reset, timeout: neither a result nor a clean 503
        return {"id": cid, "kind": "bad", "why": repr(e), "secs": time.monotonic() - t0}
    secs = time.monotonic() - t0
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if status == 200 and isinstance(doc, dict) and doc.get("challenge_id") == cid \
            and isinstance(doc.get("frames"), list):
        return {"id": cid, "kind": "result", "frames": len(doc["frames"]), "secs": secs}
    retry_after = headers.get("Retry-After") if headers else None
    if status == 503 and retry_after and retry_after.isdigit() and isinstance(doc, dict) \
            and doc.get("error"):
        return {"id": cid, "kind": "clean_503", "retry_after": int(retry_after), "secs": secs}
    return {"id": cid, "kind": "bad", "why": f"HTTP {status}: {raw[:200]!r}", "secs": secs}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cmd", help="service command; {addr} is replaced by HOST:PORT (also in "
                    "$PITCHSIDE_LISTEN). Default: the stand-in service, service/examples/load_test_server.rs")
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--max-concurrent", type=int, default=1,
                    help="challenge slots of the stand-in service ($PITCHSIDE_MAX_CONCURRENT)")
    ap.add_argument("--frame-ms", type=int, default=0,
                    help="stand-in analyzer sleep per frame ($PITCHSIDE_STAND_IN_FRAME_MS)")
    ap.add_argument("--video", default=os.path.join(ROOT, "assets", "vtest.avi"))
    ap.add_argument("--timeout", type=float, default=300, help="seconds for the whole run")
    ap.add_argument("--term-after", type=float, default=None,
                    help="send SIGTERM this many seconds into the burst, then one more challenge "
                         "(which must get a clean 503); running challenges must still finish")
    args = ap.parse_args()
    deadline = time.monotonic() + args.timeout

    if not os.path.isfile(args.video):
        sys.exit(f"{args.video}: missing (run scripts/fetch-assets.sh)")
    httpd = serve_video(args.video)
    video_url = f"http://127.0.0.1:{httpd.server_address[1]}/{os.path.basename(args.video)}"

    addr = f"127.0.0.1:{free_port()}"
    base = f"http://{addr}"
    cmd = (args.cmd or stand_in_command()).replace("{addr}", addr)
    env = dict(os.environ, PITCHSIDE_LISTEN=addr,
               PITCHSIDE_MAX_CONCURRENT=str(args.max_concurrent),
               PITCHSIDE_STAND_IN_FRAME_MS=str(args.frame_ms))
    env.setdefault("RUST_LOG", "warn")
    print(f"service: {cmd}\n  listen {addr}, video {video_url}", flush=True)
    late = None
    proc = subprocess.Popen(shlex.split(cmd), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                sys.exit(f"service exited early with status {proc.returncode}")
            try:
                if get(f"{base}/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("service did not come up")
            time.sleep(0.1)
        rss_idle = proc_status(proc.pid, "VmRSS")

        peak_rss = [rss_idle or 0]
        last_hwm = [proc_status(proc.pid, "VmHWM")]
        stop_sampling = threading.Event()

        # VmHWM is the kernel's own peak; sampling keeps the last value in case the process
        # exits (after --term-after) before it is read at the end.
        def sample():
            while not stop_sampling.is_set():
                v = proc_status(proc.pid, "VmRSS")
                if v:
                    peak_rss[0] = max(peak_rss[0], v)
                h = proc_status(proc.pid, "VmHWM")
                if h:
                    last_hwm[0] = h
                time.sleep(0.02)

        threading.Thread(target=sample, daemon=True).start()

        results = [None] * args.concurrency
        barrier = threading.Barrier(args.concurrency)

        def client(i):
            barrier.wait()
            left = max(1.0, deadline - time.monotonic() - 30)
            results[i] = post_challenge(base, f"load-{i}", video_url, left)

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.concurrency)]
        for t in threads:
            t.start()
        if args.term_after is not None:
            time.sleep(args.term_after)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            late = post_challenge(base, "after-term", video_url, 10)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        wall = time.monotonic() - t0
        stop_sampling.set()
        hwm = proc_status(proc.pid, "VmHWM") or last_hwm[0]
        try:
            metrics = get(f"{base}/metrics")[1].decode()
            avail = json.loads(get(f"{base}/availability")[1])
        except OSError:  # already gone after --term-after
            metrics, avail = "", {}

        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=max(1.0, min(30.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed (did not exit within 30 s of SIGTERM)"
    finally:
        if proc.poll() is None:
            proc.kill()
        httpd.shutdown()

    results = [r or {"kind": "bad", "why": "no answer before the deadline"} for r in results]
    kinds = {k: sum(r["kind"] == k for r in results) for k in ("result", "clean_503", "bad")}
    print(f"{args.concurrency} concurrent challenges, {args.max_concurrent} slot(s), {wall:.2f} s wall:")
    for r in sorted(results, key=lambda r: r.get("id", "")):
        extra = {k: v for k, v in r.items() if k not in ("id", "kind")}
        print(f"  {r.get('id', '?'):8} {r['kind']:9} {extra}")
    print(f"results {kinds['result']}, clean 503 {kinds['clean_503']}, other {kinds['bad']}")
    if late is not None:
        print(f"challenge sent after SIGTERM: {late['kind']} {late.get('why', '')}")
    print(f"service memory: VmRSS idle {rss_idle} KiB, sampled peak VmRSS {peak_rss[0]} KiB, "
          f"VmHWM {hwm} KiB ({(hwm or 0) / 1024:.1f} MiB)")
    print(f"available after the run: {avail.get('available')}; exit after SIGTERM: {code}")
    for line in metrics.splitlines():
        if line.startswith(("pitchside_challenges_total", "pitchside_download_bytes_total")):
            print("  " + line)
    summary = {"concurrency": args.concurrency, "slots": args.max_concurrent, **kinds,
               "vmhwm_kib": hwm, "rss_idle_kib": rss_idle, "wall_s": round(wall, 2),
               "exit": code}
    ok = kinds["bad"] == 0 and kinds["result"] >= 1 and code == 0
    if late is not None:
        summary["after_sigterm"] = late["kind"]
        ok = ok and late["kind"] == "clean_503"
    print("SUMMARY " + json.dumps(summary))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
