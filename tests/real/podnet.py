"""The real tier's pod network: the API server's egress proxy, answering as the pods.

kube-apiserver refuses to proxy to loopback addresses, and kwok's pods have made-up IPs that no
host owns. So the API server is configured (EgressSelectorConfiguration, `cluster`) to reach
pods, Services and nodes through an HTTP CONNECT proxy on a unix socket: this one. For a CONNECT
to a pod's IP and one of its container ports it answers 200 and then serves, on that tunnel, the
same fake model app the emulators serve (`tests.emulators.proxy.Applications`, scripted per
release). A CONNECT to a node's kubelet port is answered with TLS (a certificate the API server
verifies against the tier's CA) and the kubelet's container-log endpoint: a crash-looping pod's
previous container wrote the same traceback as in the emulator. Nothing is forwarded anywhere:
an address that is no pod's or node's is refused, as a dial to a dead address fails.

Prometheus scrapes the pods the same way, through this network: the same handler also listens
on 127.0.0.1 (``scrape_proxy``) as a plain HTTP forward proxy (``GET http://<pod IP>:<port>/metrics``),
which is what Prometheus' ``proxy_url`` sends. ``Users`` is the traffic the route would bring:
a thread sending predictions to every running pod of a namespace, so the pods' counters grow.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socketserver
import ssl
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.emulators.kube_controller import CRASH_LOG
from tests.emulators.proxy import Applications, Call

if TYPE_CHECKING:
    from .controlplane import ControlPlane
    from .stages import Kubelets

KUBELET_PORT = 10250
RUNNING_LOG = "INFO:     Started server process [1]\nINFO:     Application startup complete."
LOGS = re.compile(r"/containerLogs/(?P<ns>[^/]+)/(?P<pod>[^/]+)/(?P<container>[^/?]+)")


class PodNetwork:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.apps = Applications()
        self.connects: list[str] = []  # every CONNECT target, "ip:port", in order
        self.shared_addresses: list[tuple[str, list[str]]] = []  # an address two pods had at once
        self._plane: ControlPlane | None = None
        self.kubelets: Kubelets | None = None
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._scrapes: socketserver.ThreadingTCPServer | None = None

    def start(self) -> PodNetwork:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()
        server = socketserver.ThreadingUnixStreamServer(str(self.socket_path), _handler(self))
        server.daemon_threads = True
        os.chmod(self.socket_path, 0o600)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        scrapes = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _handler(self))
        scrapes.daemon_threads = True
        threading.Thread(target=scrapes.serve_forever, daemon=True).start()
        self._scrapes = scrapes
        return self

    @property
    def scrape_proxy(self) -> str:
        """The forward proxy Prometheus scrapes the pods through (its ``proxy_url``)."""
        assert self._scrapes is not None
        return f"http://127.0.0.1:{self._scrapes.server_address[1]}"

    def attach(self, plane: ControlPlane) -> None:
        self._plane = plane

    def kubelet_tls(self) -> ssl.SSLContext:
        assert self._plane is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        folder = self._plane.workdir
        context.load_cert_chain(folder / "kubelet.crt", folder / "kubelet.key")
        return context

    def is_node(self, address: str) -> bool:
        from .controlplane import NODE_IP, NODE_NAME

        return address in (NODE_NAME, NODE_IP)

    def container_log(self, namespace: str, name: str, previous: bool) -> tuple[int, str]:
        """What the kubelet answers for a container's log (the kubelet's own status codes)."""
        pod = self.pod_named(namespace, name)
        if pod is None:
            return 404, f'pods "{name}" not found'
        image = pod["spec"]["containers"][0]["image"]
        scenario = (self.kubelets.table if self.kubelets else {}).get(f"{namespace} {image}", "ready")
        crashed = scenario in ("crashloop", "oom")
        if previous:
            if crashed:
                return 200, CRASH_LOG + "\n"
            return 400, f'previous terminated container "{pod["spec"]["containers"][0]["name"]}" not found'
        if scenario == "pull_error":
            return 400, f'container in pod "{name}" is waiting to start: trying and failing to pull image'
        return 200, (CRASH_LOG if crashed else RUNNING_LOG) + "\n"

    def pod_named(self, namespace: str, name: str) -> dict[str, Any] | None:
        assert self._plane is not None
        found: dict[str, Any] | None = self._plane.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        return found

    def stop(self) -> None:
        for server in (self._server, self._scrapes):
            if server is not None:
                server.shutdown()
                server.server_close()
        self._server = self._scrapes = None

    def _terminating_namespaces(self) -> set[str]:
        assert self._plane is not None
        listed = self._plane.get("/api/v1/namespaces")["items"]
        return {n["metadata"]["name"] for n in listed if n["status"].get("phase") == "Terminating"}

    def pod_at(self, address: str) -> dict[str, Any] | None:
        """The running pod with this IP, read from the real API server as admin."""
        if self._plane is None:
            return None
        query = urllib.parse.urlencode({"fieldSelector": f"status.podIP={address}"})
        items = self._plane.get(f"/api/v1/pods?{query}")["items"]
        going = self._terminating_namespaces()
        live = [
            p for p in items
            if not p["metadata"].get("deletionTimestamp") and p["metadata"]["namespace"] not in going
        ] or items  # fmt: skip
        # kwok hands an address out again once its pod is going: the newest pod holds it now.
        live.sort(key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)
        if len(live) > 1:
            self.shared_addresses.append((address, [p["metadata"]["name"] for p in live]))
        return live[0] if live else None


def _container_ports(pod: dict[str, Any]) -> set[int]:
    return {int(p["containerPort"]) for c in pod["spec"]["containers"] for p in c.get("ports") or []}


def _handler(network: PodNetwork) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        pod: dict[str, Any] | None = None

        def do_CONNECT(self) -> None:
            address, _, port = self.path.rpartition(":")
            network.connects.append(self.path)
            if network.is_node(address) and port == str(KUBELET_PORT):
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                self._become_the_kubelet()
                return
            pod = network.pod_at(address)
            if pod is not None and network.apps.unreachable:  # a closed security group: the dial times out
                self._plain(503, f"dial tcp {self.path}: i/o timeout")
                self.close_connection = True
                return
            if pod is None or int(port or 0) not in _container_ports(pod):
                self._plain(503, f"dial tcp {self.path}: connect: connection refused")
                self.close_connection = True
                return
            self.pod = pod
            self.send_response(200, "Connection established")
            self.end_headers()

        def _become_the_kubelet(self) -> None:
            self.connection = network.kubelet_tls().wrap_socket(self.connection, server_side=True)
            self.rfile = self.connection.makefile("rb", self.rbufsize)
            self.wfile = socketserver._SocketWriter(self.connection)  # type: ignore[attr-defined]
            self.kubelet = True

        kubelet = False

        def _kubelet(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            found = LOGS.fullmatch(parts.path)
            if self.command != "GET" or found is None:
                self._plain(404, "404 page not found")
                return
            previous = urllib.parse.parse_qs(parts.query).get("previous") == ["true"]
            status, text = network.container_log(found["ns"], found["pod"], previous)
            lines = text.splitlines()
            tail = urllib.parse.parse_qs(parts.query).get("tailLines")
            if status == 200 and tail:
                text = "\n".join(lines[-int(tail[0]) :]) + "\n"
            self._plain(status, text)

        def _app(self) -> None:
            if self.kubelet:
                self._kubelet()
                return
            if self.path.startswith("http://"):  # forwarded: each request names its pod
                if not self._forwarded():
                    return
            elif self.pod is None:
                self._plain(400, "not a tunnel")
                return
            assert self.pod is not None
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            path = urllib.parse.urlsplit(self.path).path
            call = Call(self.pod["metadata"]["name"], self.command, path, body)
            network.apps.calls.append(call)
            answer = network.apps.answer(self.pod, self.command, path, body)
            call.status = answer.status
            data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", (answer.headers or {}).get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _forwarded(self) -> bool:
            """A forward proxy's request (``GET http://ip:port/path``): find the pod it names."""
            parts = urllib.parse.urlsplit(self.path)
            assert parts.hostname is not None
            pod = network.pod_at(parts.hostname)
            if pod is None or (parts.port or 80) not in _container_ports(pod):
                self._plain(502, f"dial tcp {parts.netloc}: connect: connection refused")
                return False
            self.pod = pod
            return True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _app

        def _plain(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle(self) -> None:
            # The API server may hang up mid-request (its client went away): nothing to report.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                super().handle()

        def address_string(self) -> str:
            return "kube-apiserver"

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
