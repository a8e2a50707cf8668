"""Real Prometheus (Debian's package) scraping the fake app's pods, and the users who load them.

Debian builds Prometheus without its Kubernetes discovery (``kubernetes_sd_configs`` is not
a known field there), so Prometheus finds the pods through ``http_sd_configs``: a small endpoint
here lists what ``role: pod`` would give, read from the real API server: each Running pod's
``http`` port with its namespace, name and ``releasegate.dev/track`` label as the target's
labels. Pod IPs belong to no host here, so every scrape goes through the pod network's forward
proxy (``proxy_url``), which answers as the pod: the app's ``/metrics`` counts what that pod
has served. So the canary's analysis queries are answered by real PromQL: an empty vector where
no series exists, NaN for 0/0, ``rate()`` only once two scrapes are in its window.

Discovery is polled every second, and Prometheus takes up to 5 s more to pass a new target to
the scraper (its discovery manager batches updates); then it scrapes every second.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml

from .controlplane import NotBuilt, binaries

if TYPE_CHECKING:
    from .controlplane import ControlPlane
    from .podnet import PodNetwork

TRACK_LABEL = "releasegate.dev/track"
START_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RealPrometheus:
    def __init__(self, workdir: Path, plane: ControlPlane, network: PodNetwork) -> None:
        self.workdir, self.plane, self.network = workdir / "prometheus", plane, network
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "prometheus.log"
        self.discovery = _Discovery(plane)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RealPrometheus:
        binary = binaries() / "prometheus"  # the cache's, never a Prometheus of the machine's
        if not binary.exists():
            raise NotBuilt("prometheus is not in the real tier's cache (bash cluster/build.sh prometheus)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.discovery.start()
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        started = time.monotonic()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() - started > START_SECONDS:
                raise RuntimeError(f"prometheus did not start; see {self.log}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        self.discovery.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def query(self, promql: str) -> dict[str, Any]:
        """The ``data`` of one instant query, as Prometheus answers it."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body: dict[str, Any] = json.load(answer)
        assert body["status"] == "success", body
        data: dict[str, Any] = body["data"]
        return data

    def scraped(self, namespace: str) -> set[str]:
        """The pods of ``namespace`` whose last scrape succeeded."""
        found = self.query(f'up{{namespace="{namespace}"}} == 1')["result"]
        return {sample["metric"]["pod"] for sample in found}

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def _config(self) -> dict[str, Any]:
        discovery = {"url": self.discovery.url, "refresh_interval": "1s"}
        job = {"job_name": "pods", "proxy_url": self.network.scrape_proxy, "http_sd_configs": [discovery]}
        return {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [job]}  # fmt: skip


class _Discovery:
    """Prometheus' HTTP service discovery: the pods ``role: pod`` would find, as target groups."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/targets"

    def start(self) -> None:
        discovery = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = json.dumps(discovery.targets()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def targets(self) -> list[dict[str, Any]]:
        groups = []
        for pod in self.plane.get("/api/v1/pods")["items"]:
            address = pod["status"].get("podIP")
            if pod["status"].get("phase") != "Running" or not address:
                continue
            labels = {"namespace": pod["metadata"]["namespace"], "pod": pod["metadata"]["name"]}
            if track := (pod["metadata"].get("labels") or {}).get(TRACK_LABEL):
                labels["track"] = track
            ports = [
                p for c in pod["spec"]["containers"] for p in c.get("ports") or [] if p.get("name") == "http"
            ]
            groups += [{"targets": [f"{address}:{p['containerPort']}"], "labels": labels} for p in ports]
        return groups


class Users:
    """The traffic a route would bring: a prediction to every Ready pod of ``namespace`` every
    ``every`` seconds, answered by the pod's fake app (so its counters grow)."""

    def __init__(self, plane: ControlPlane, network: PodNetwork, namespace: str, every: float = 0.2) -> None:
        self.plane, self.network, self.namespace, self.every = plane, network, namespace, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def __enter__(self) -> Users:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(10)

    def _send(self) -> None:
        while not self._stop.is_set():
            for pod in self.plane.get(f"/api/v1/namespaces/{self.namespace}/pods")["items"]:
                if _ready(pod):
                    self.network.apps.answer(pod, "POST", "/predict", {"inputs": [[1.0, 2.0]]})
            self._stop.wait(self.every)


def _ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
