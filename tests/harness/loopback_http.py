"""What the harness's local HTTP endpoints share (the scripted model
endpoints and the OTLP receiver): a quiet request handler that answers
JSON, and a threaded server on a free loopback port, run for the length of
a `with` block; and the HOST:PORT option of the harness's HTTP MCP servers."""
from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def read_json(self) -> tuple[bytes, object]:
        """The request body, and its JSON ({} when it is none or invalid)."""
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n)
        try:
            return raw, json.loads(raw or b"{}")
        except ValueError:
            return raw, {}

    def send_json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 (a free port, `self.url`) inside `with`."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def parse_host_port(ap: argparse.ArgumentParser, value: str) -> tuple[str, int]:
    """`127.0.0.1:8931`, `localhost:8931` or `[::1]:8931` to (host, port)."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        ap.error(f"--http wants HOST:PORT, got {value!r}")
    return host, int(port)
