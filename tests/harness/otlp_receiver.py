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
from pathlib import Path

from loopback_http import LoopbackServer, QuietHandler


class OtlpFileReceiver(LoopbackServer):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.requests: list[str] = []
        self._lock = threading.Lock()
        rx = self

        class Handler(QuietHandler):
            def do_POST(self):
                raw, _ = self.read_json()
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
                self.send_json({} if ok else {"error": "expected OTLP/HTTP JSON"}, 200 if ok else 415)

        self._serve(Handler)

    def file_for(self, signal: str) -> Path:
        return self.path.with_name(f"{self.path.stem}.{signal}{self.path.suffix}")

