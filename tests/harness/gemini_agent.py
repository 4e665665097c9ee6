"""The real Gemini CLI as the agent: one headless run (`gemini -p … -o
stream-json`) against the scripted Gemini API (gemini_model.py), with MCP
servers from a private HOME/.gemini/settings.json, so that the chat
recording under HOME/.gemini/tmp/<project>/chats/ and the stream-json
output are written by Gemini CLI itself.

Gemini CLI comes from tests/agents/package-lock.json, installed by
scripts/setup.sh into $MCPF_AGENTS_DIR (default ~/.cache/mcp-forensics/agents);
it is a bundled Node program (no install scripts needed), run with the
`node` on PATH. Everything it writes stays under the run's HOME; nothing
leaves loopback: the model is the local endpoint (GOOGLE_GEMINI_BASE_URL,
API-key auth with a dummy key, no retries), usage statistics (Clearcut),
telemetry, auto-update and its notification, the IDE integration and
ripgrep are off, folder trust is off, and any proxy-aware client would hit a
dead loopback port.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from gemini_model import ScriptedGemini

AGENTS_DIR = Path(os.environ.get("MCPF_AGENTS_DIR", str(Path.home() / ".cache/mcp-forensics/agents")))
GEMINI_JS = AGENTS_DIR / "node_modules/@google/gemini-cli/bundle/gemini.js"
MODEL = "gemini-2.5-flash"
# A port nothing listens on: a client that honours the proxy variables fails
# at once instead of reaching the network.
DEAD_PROXY = "http://127.0.0.1:9"


def _node() -> str | None:
    return shutil.which("node")


def available() -> str | None:
    """Why Gemini CLI cannot run here, or None."""
    if not GEMINI_JS.is_file():
        return f"Gemini CLI is not installed at {GEMINI_JS} (scripts/setup.sh installs it)"
    node = _node()
    if not node:
        return "Gemini CLI needs Node.js (>= 20): no `node` on PATH"
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    m = re.match(r"v(\d+)", out)
    if not m or int(m.group(1)) < 20:
        return f"Gemini CLI needs Node.js >= 20, found {out or '?'}"
    return None


def _env(home: Path, extra: dict | None = None) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "dumb", "LANG": "C.UTF-8",
        "NO_COLOR": "1", "TMPDIR": str(home / "tmp"),
        "GEMINI_API_KEY": "scripted-model-key",
        "GEMINI_TELEMETRY_ENABLED": "false",
        "HTTPS_PROXY": DEAD_PROXY, "HTTP_PROXY": DEAD_PROXY, "https_proxy": DEAD_PROXY, "http_proxy": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(extra or {})
    return env


def version() -> str:
    with tempfile.TemporaryDirectory(prefix="mcpf-gemini-") as home:
        out = subprocess.run([_node() or "node", str(GEMINI_JS), "--version"], env=_env(Path(home)), capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=60).stdout
    return out.split()[-1] if out.split() else "?"


def mcp_add(home: Path, workdir: Path, scope: str, name: str, command_or_url: str, args: list[str] | None = None,
            transport: str = "stdio", env: dict | None = None, headers: dict | None = None) -> Path:
    """`gemini mcp add --scope SCOPE`: Gemini CLI itself writes the server into
    HOME/.gemini/settings.json (user) or WORKDIR/.gemini/settings.json
    (project); returns that file."""
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [_node() or "node", str(GEMINI_JS), "mcp", "add", "--scope", scope, "--transport", transport]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    cmd += [name, command_or_url, *(args or [])]
    r = subprocess.run(cmd, cwd=workdir, env=_env(home), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"gemini mcp add exited {r.returncode}: {r.stderr[-2000:]}")
    return (home if scope == "user" else workdir) / ".gemini" / "settings.json"


def _settings(home: Path, mcp_servers: dict) -> Path:
    """HOME/.gemini/settings.json: the user settings Gemini CLI reads."""
    gemini = home / ".gemini"
    gemini.mkdir(parents=True, exist_ok=True)
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False, "maxAttempts": 1,
                    "retryFetchErrors": False, "checkpointing": {"enabled": False}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "ide": {"enabled": False},
        "model": {"name": MODEL},
        "tools": {"useRipgrep": False},
        # Trusted servers' tools run without a confirmation (there is no one
        # to ask in a headless run).
        "mcpServers": {name: {"command": s["command"], "args": s.get("args", []), "env": s.get("env", {}), "trust": True, "timeout": 30000}
                       for name, s in mcp_servers.items()},
    }
    path = gemini / "settings.json"
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


def run_session(home: Path, workdir: Path, mcp_servers: dict, steps: list[dict], prompt: str, stream_out: Path,
                timeout: float = 180) -> dict:
    """Run one `gemini -p PROMPT -o stream-json`; return {"stream": path,
    "chats": [chat recordings under HOME], "requests": model requests}."""
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    _settings(home, mcp_servers)
    with ScriptedGemini(steps) as model:
        env = _env(home, {"GOOGLE_GEMINI_BASE_URL": model.url})
        cmd = [_node() or "node", str(GEMINI_JS), "-p", prompt, "-o", "stream-json", "-m", MODEL]
        with open(stream_out, "wb") as out:
            r = subprocess.run(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"gemini exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}")
        requests = list(model.requests)
    return {"stream": stream_out, "chats": chats(home), "requests": requests, "stderr": r.stderr.decode(errors="replace")}


def chats(home: Path) -> list[Path]:
    """The chat recordings Gemini CLI wrote under HOME (JSON Lines since
    2026-04, `session-*.json` documents before)."""
    return sorted(p for p in (home / ".gemini" / "tmp").glob("*/chats/session-*") if p.suffix in (".jsonl", ".json"))
