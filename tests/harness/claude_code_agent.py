"""The real Claude Code CLI as the agent: one headless session (`claude -p`)
against the scripted model endpoint (anthropic_model.py), with MCP servers
from an `--mcp-config` file, so that the transcript under
HOME/.claude/projects/ and the `--output-format stream-json` output are
written by Claude Code itself.

Claude Code comes from tests/agents/package-lock.json, installed by
scripts/setup.sh into $MCPF_AGENTS_DIR (default ~/.cache/mcp-forensics/agents).
Everything it writes stays under the run's HOME and TMPDIR; nothing leaves
loopback (auto-update, telemetry and error reporting are off, and the model
is the local endpoint).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import contextlib
import re

from anthropic_model import ScriptedModel
from otlp_receiver import OtlpFileReceiver

AGENTS_DIR = Path(os.environ.get("MCPF_AGENTS_DIR", str(Path.home() / ".cache/mcp-forensics/agents")))
# The native binary is the platform package's (install scripts are off).
CLAUDE_BIN = AGENTS_DIR / "node_modules/@anthropic-ai/claude-code-linux-x64/claude"


def available() -> str | None:
    """Why Claude Code cannot run here, or None."""
    if not CLAUDE_BIN.is_file():
        return f"Claude Code is not installed at {CLAUDE_BIN} (scripts/setup.sh installs it)"
    return None


def version() -> str:
    out = subprocess.run([str(CLAUDE_BIN), "--version"], capture_output=True, text=True, timeout=60).stdout
    return out.split()[0] if out.split() else "?"


def _env(home: Path, extra: dict | None = None) -> dict:
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home), "TMPDIR": str(tmp), "CLAUDE_CODE_TMPDIR": str(tmp), "XDG_RUNTIME_DIR": str(tmp),
        "TERM": "dumb", "LANG": "C.UTF-8",
        "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    env.update(extra or {})
    return env


def add_server(home: Path, workdir: Path, scope: str, name: str, args: list[str]) -> None:
    """`claude mcp add --scope SCOPE NAME ARGS...`: Claude Code writes the
    server into ~/.claude.json (user, local) or WORKDIR/.mcp.json (project)."""
    workdir.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(CLAUDE_BIN), "mcp", "add", "--scope", scope, name, *args], cwd=workdir, env=_env(home),
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"claude mcp add exited {r.returncode}: {r.stderr[-2000:]}")


def _telemetry_env(url: str, tool_details: bool) -> dict:
    """Claude Code's OpenTelemetry log events to a local OTLP/HTTP JSON
    receiver, exported at once; with `tool_details`, the tool's server, name
    and input (OTEL_LOG_TOOL_DETAILS=1), which Claude Code leaves out by default."""
    env = {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_LOGS_EXPORT_INTERVAL": "200"}
    if tool_details:
        env["OTEL_LOG_TOOL_DETAILS"] = "1"
    return env


def run_session(home: Path, workdir: Path, mcp_servers: dict, steps: list[dict], prompt: str,
                allowed_tools: list[str], stream_out: Path, timeout: float = 180,
                otel_out: Path | None = None, tool_details: bool = True) -> dict:
    """Run one session; return {"stream": path, "transcripts": [paths], "requests": model requests,
    "otel_logs": path of the OTLP log events (with `otel_out`) or None}."""
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    config = home / "mcp-config.json"
    config.write_text(json.dumps({"mcpServers": mcp_servers}, indent=2))
    receiver = OtlpFileReceiver(otel_out) if otel_out else contextlib.nullcontext()
    with ScriptedModel(steps) as model, receiver as rx:
        env = _env(home, {
            "ANTHROPIC_BASE_URL": model.url, "ANTHROPIC_API_KEY": "scripted-model-key",
            # Offer MCP tools to the model directly (not behind ToolSearch).
            "ENABLE_TOOL_SEARCH": "false",
            **(_telemetry_env(rx.url, tool_details) if rx else {}),
        })
        cmd = [str(CLAUDE_BIN), "-p", prompt, "--mcp-config", str(config), "--output-format", "stream-json", "--verbose",
               "--allowedTools", ",".join(allowed_tools)]
        with open(stream_out, "wb") as out:
            r = subprocess.run(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"claude exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}")
        requests = list(model.requests)
    transcripts = sorted((home / ".claude" / "projects").glob("*/*.jsonl"))
    otel_logs = rx.file_for("logs") if rx else None
    return {"stream": stream_out, "transcripts": transcripts, "requests": requests, "otel_logs": otel_logs}


def message_ids(stream: Path) -> list[str]:
    """The MessageIDs the e-mail server returned, in call order, from the
    tool results of a stream-json output (the result text, which Claude
    Code may keep as the JSON of the structured content)."""
    ids = []
    for line in Path(stream).read_text().splitlines():
        rec = json.loads(line) if line.strip() else {}
        for b in (rec.get("message") or {}).get("content") or []:
            if isinstance(b, dict) and b.get("type") == "tool_result":
                text = b["content"] if isinstance(b["content"], str) else " ".join(c.get("text", "") for c in b["content"])
                m = re.search(r"MessageID: ([^\s\\\"]+)", text)
                if m:
                    ids.append(m.group(1))
    return ids
