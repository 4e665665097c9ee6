"""A stdio tap between an MCP client and server: the recorder the tests use.

The client launches the tap as if it were the server; the tap launches the
real server, relays every newline-delimited JSON-RPC message unchanged in
both directions, and records each one twice:

- in the Claude Desktop per-server log shape (`mcp-server-NAME.log`):
  `TS [NAME] [info] Message from client: {json} { metadata: undefined }`,
  with Desktop's launch lines and the server's stderr interleaved raw;
- in the JSON-RPC wire log (JSON Lines) that mcp-forensics documents:
  `{"ts","direction","server","session","message"}`.

    python stdio_tap.py --name NAME --desktop-log F --wire-log F -- server-cmd args...
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timezone

SUFFIX = " { metadata: undefined }"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Recorder:
    def __init__(self, name: str, desktop_path: str, wire_path: str):
        self.name = name
        self.lock = threading.Lock()
        self.desktop = open(desktop_path, "a", encoding="utf-8")
        self.wire = open(wire_path, "a", encoding="utf-8")
        self.session = f"{name}-{uuid.uuid4().hex[:12]}"

    def desktop_line(self, text: str) -> None:
        with self.lock:
            self.desktop.write(text + "\n")
            self.desktop.flush()

    def event(self, text: str, suffix: bool = True) -> None:
        self.desktop_line(f"{now()} [{self.name}] [info] {text}{SUFFIX if suffix else ''}")

    def launch(self, command: list[str]) -> None:
        self.event("Initializing server...")
        args = "".join("      '" + x.replace("'", "\\'") + "',\n" for x in command[1:])
        block = (
            f"{now()} [{self.name}] [info] Using MCP server command: {command[0]} with args and path: {{\n"
            f"  metadata: {{\n    args: [\n{args}      [length]: {len(command) - 1}\n    ],\n"
            f"    paths: [\n      '/usr/local/bin',\n      '/usr/bin',\n      '/bin',\n      [length]: 3\n    ]\n  }}\n}} %o"
        )
        self.desktop_line(block)
        self.event("Server started and connected successfully")

    def message(self, direction: str, raw: str) -> None:
        ts = now()
        who = "client" if direction == "client_to_server" else "server"
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError:
            self.desktop_line(f"{ts} [{self.name}] [error] Unexpected non-JSON output: {raw[:200]}")
            return
        with self.lock:
            self.desktop.write(f"{ts} [{self.name}] [info] Message from {who}: {raw}{SUFFIX}\n")
            self.desktop.flush()
            self.wire.write(json.dumps({"ts": ts, "direction": direction, "server": self.name,
                                        "session": self.session, "message": msg}, separators=(",", ":")) + "\n")
            self.wire.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--desktop-log", required=True)
    ap.add_argument("--wire-log", required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    command = a.command[1:] if a.command and a.command[0] == "--" else a.command
    rec = Recorder(a.name, a.desktop_log, a.wire_log)
    rec.launch(command)
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)

    def client_to_server() -> None:
        for line in sys.stdin.buffer:
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text:
                rec.message("client_to_server", text)
            child.stdin.write(line)
            child.stdin.flush()
        child.stdin.close()

    def server_to_client() -> None:
        for line in child.stdout:
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text:
                rec.message("server_to_client", text)
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()

    def stderr_passthrough() -> None:
        for line in child.stderr:
            rec.desktop_line(line.decode("utf-8", "replace").rstrip("\r\n"))

    threads = [threading.Thread(target=f, daemon=True) for f in (server_to_client, stderr_passthrough)]
    for t in threads:
        t.start()
    try:
        client_to_server()
    except (BrokenPipeError, ValueError):
        pass
    code = child.wait()
    for t in threads:
        t.join(timeout=5)
    rec.event("Client transport closed")
    os._exit(code if code >= 0 else 1)


if __name__ == "__main__":
    main()
