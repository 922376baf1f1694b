"""`Pipeline.run` on http(s) URLs, as `pitchside run URL`: the video downloaded (the
deployment's `service.download` settings, `service.temp_dir`) into a temporary file that is
removed afterwards, from a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import os
import pathlib
import signal
import threading
import time
from typing import Dict

import pytest

import pitchside
from conftest import VTEST, cli_error, without_time


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: Dict[str, pathlib.Path] = {}

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        slow = self.path.startswith("/slow/")
        path = self.routes.get(self.path[len("/slow") :] if slow else self.path)
        if path is None:
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/x-msvideo")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            if slow:
                # 4 KiB every 50 ms: minutes for the whole file.
                for i in range(0, len(data), 4096):
                    self.wfile.write(data[i : i + 4096])
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading


@pytest.fixture(scope="module")
def server(short_clip):
    _Handler.routes = {"/vtest.avi": VTEST, "/short.avi": short_clip}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def temp_pipeline(small_yaml, tmp_path_factory):
    """The small deployment with its own `service.temp_dir`, where downloads go."""
    d = tmp_path_factory.mktemp("url")
    downloads = d / "downloads"
    yaml = d / "small-url.yaml"
    yaml.write_text(small_yaml.read_text() + f"service:\n  temp_dir: {downloads}\n")
    return pitchside.Pipeline(yaml), downloads, yaml


def test_run_on_a_url_equals_run_on_the_file_and_removes_the_download(temp_pipeline, server, small_cli_answer):
    pipeline, downloads, _ = temp_pipeline
    by_url = pipeline.run(f"{server}/vtest.avi", progress=False)
    # `run` on the file with these settings (the CLI's, which `run` equals: test_run.py).
    assert without_time(by_url) == without_time(small_cli_answer)
    assert len(by_url["frames"]) == 795
    assert downloads.is_dir() and list(downloads.iterdir()) == []


def test_a_404_raises_naming_the_url_and_the_status(temp_pipeline, server):
    pipeline, downloads, yaml = temp_pipeline
    url = f"{server}/absent.avi"
    with pytest.raises(pitchside.DownloadError) as e:
        pipeline.run(url, progress=False)
    assert url in str(e.value) and "404" in str(e.value), str(e.value)
    assert str(e.value) == cli_error("run", "--config", str(yaml), url)
    assert isinstance(e.value, pitchside.VideoError)
    assert list(downloads.iterdir()) == []


def test_other_schemes_and_a_url_that_is_not_a_video(temp_pipeline, server, tmp_path):
    pipeline, downloads, yaml = temp_pipeline
    with pytest.raises(pitchside.InputError, match="ftp://x/a.avi is a URL") as e:
        pipeline.run("ftp://x/a.avi", progress=False)
    assert str(e.value) == cli_error("run", "ftp://x/a.avi")
    # Served, but not a video: the URL in the message, not the temporary file's name.
    _Handler.routes["/text.avi"] = pathlib.Path(__file__)
    with pytest.raises(pitchside.VideoError) as e:
        pipeline.run(f"{server}/text.avi", progress=False)
    assert str(e.value).startswith(f"{server}/text.avi: "), str(e.value)
    assert "pitchside-" not in str(e.value)
    assert str(e.value) == cli_error("run", "--config", str(yaml), f"{server}/text.avi")
    assert list(downloads.iterdir()) == []


def test_ctrl_c_during_the_download_stops_it_and_removes_the_file(temp_pipeline, server):
    pipeline, downloads, _ = temp_pipeline
    seen = []

    def interrupt() -> None:
        # Once the download has begun writing its file.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(downloads.iterdir()):
            time.sleep(0.02)
        seen.extend(downloads.iterdir())
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=interrupt)
    t.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(f"{server}/slow/vtest.avi", progress=False)
    t.join()
    assert seen, "the download never started"
    # The whole file takes minutes at this rate: the run stopped on the signal.
    assert time.monotonic() - started < 60
    assert list(downloads.iterdir()) == []
    # The pipeline is usable afterwards.
    assert len(pipeline.run(f"{server}/short.avi", progress=False)["frames"]) == 40
