"""A local OTLP/HTTP JSON receiver that writes what it receives the way the
OpenTelemetry Collector's `file` exporter (format json) does: one export
request per line, JSON Lines. The bodies are the exporter's own (only
re-serialised compactly onto one line); nothing is added or changed.

    with OtlpFileReceiver(path) as rx:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rx.url

Accepts POST /v1/logs, /v1/traces and /v1/metrics with content-type
application/json; each signal goes to its own file (`path` with the signal
before the suffix: telemetry.logs.jsonl), as the file exporter keeps one
signal per file.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class OtlpFileReceiver:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.requests: list[str] = []
        self._lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n)
                signal = self.path.rstrip("/").rsplit("/", 1)[-1]
                ok = signal in ("logs", "traces", "metrics") and "json" in (self.headers.get("content-type") or "")
                if ok:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        ok = False
                if ok:
                    with rx._lock:
                        rx.requests.append(signal)
                        with open(rx.file_for(signal), "a", encoding="utf-8") as f:
                            f.write(json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n")
                data = b"{}" if ok else b'{"error":"expected OTLP/HTTP JSON"}'
                self.send_response(200 if ok else 415)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def file_for(self, signal: str) -> Path:
        return self.path.with_name(f"{self.path.stem}.{signal}{self.path.suffix}")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
