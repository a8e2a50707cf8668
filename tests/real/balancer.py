"""A TCP load balancer in front of the real tier's kube-apiservers, as EKS's is.

An EKS control plane is several kube-apiservers behind a network load balancer that sends new
connections only to instances whose /readyz passes. One instance restarting ends the watches it
held; clients connect again and reach another one. A single API server restarted in place is a
different event (it answers, unready, with 403s while its RBAC caches fill), which EKS users do
not see. This balancer gives the tests the EKS picture: connections to 127.0.0.1:PORT are spliced
to a ready backend, round robin; with no ready backend a connection is closed at once.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable


class Balancer:
    def __init__(self, port: int, ready_check: Callable[[int], bool]) -> None:
        self.port = port
        self.backends: list[int] = []
        self.ready: dict[int, bool] = {}
        self._check = ready_check
        self._turn = itertools.count()
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", port))

    def start(self, backends: list[int]) -> Balancer:
        self.backends = backends
        self.ready = dict.fromkeys(backends, False)
        for target in (self._accept, self._watch_health):
            threading.Thread(target=target, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()

    def wait_ready(self, backend: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.ready.get(backend):
                return True
            time.sleep(0.1)
        return False

    def _watch_health(self) -> None:
        while not self._stopped.is_set():
            for backend in self.backends:
                self.ready[backend] = self._check(backend)
            time.sleep(0.2)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        ready = [b for b in self.backends if self.ready.get(b)]
        if not ready:
            client.close()
            return
        backend = ready[next(self._turn) % len(ready)]
        try:
            upstream = socket.create_connection(("127.0.0.1", backend), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        # No Nagle on either leg: a spliced segment held back until the previous one is ACKed
        # meets the kernel's delayed ACK, and ~40 ms was added to every other request (a
        # network load balancer forwards packets as they come).
        for end in (client, upstream):
            end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


def readyz_check(token: str, context: ssl.SSLContext) -> Callable[[int], bool]:
    def check(port: int) -> bool:
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/readyz", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=1):
                return True
        except OSError:
            return False

    return check
