"""The small HTTP server every emulator is built on: one thread, JSON in and out, a log."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Yielded by a stream to drop the connection mid-stream, without the closing chunk: what a
# client sees when a load balancer or a restarting API server resets it.
RESET = object()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] | None = None
    stream: Any = None  # an iterator of JSON-able objects sent as a chunked stream (watches)


class EmulatorServer:
    """Serves ``handle(request) -> Response`` on 127.0.0.1 in a daemon thread."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        # Open client connections: stop() closes them, as a server that goes away does (its
        # keep-alive connections and watches end; the next connect is refused).
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without TCP_NODELAY each response
            # waits ~40 ms for the client's delayed ACK, which no real API server does.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                emulator.requests.append(request)
                emulator._send(self, request, emulator.handle(request))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def setup(self) -> None:
                super().setup()
                with emulator._connections_lock:
                    emulator._connections.add(self.connection)

            def finish(self) -> None:
                with emulator._connections_lock:
                    emulator._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmulatorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._connections_lock:
            open_now = list(self._connections)
        for connection in open_now:
            with contextlib.suppress(OSError):  # the client closed it first
                connection.shutdown(socket.SHUT_RDWR)

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, request: Request, response: Response) -> None:
        handler.send_response(response.status)
        for name, value in (response.headers or {}).items():
            handler.send_header(name, value)
        raw = isinstance(response.body, bytes)
        if "Content-Type" not in (response.headers or {}):
            handler.send_header("Content-Type", "text/plain" if raw else "application/json")
        if response.stream is not None:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            try:
                for item in response.stream:
                    if item is RESET:
                        handler.close_connection = True
                        handler.connection.shutdown(socket.SHUT_RDWR)
                        return
                    data = json.dumps(item).encode() + b"\n"
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    handler.wfile.flush()
                handler.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped watching
            return
        if raw:
            data = response.body
        else:
            data = b"" if response.body is None else json.dumps(response.body).encode()
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if request.method != "HEAD":
            handler.wfile.write(data)
