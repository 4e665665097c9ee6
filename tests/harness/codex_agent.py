"""The real Codex CLI as the agent: one headless run (`codex exec --json`)
against the scripted Responses endpoint (openai_responses_model.py), with
MCP servers from CODEX_HOME/config.toml, so that the rollout under
CODEX_HOME/sessions/ and the `--json` event stream are written by Codex
itself.

Codex comes from tests/agents/package-lock.json, installed by
scripts/setup.sh into $MCPF_AGENTS_DIR (default ~/.cache/mcp-forensics/agents).
Everything it writes stays under the run's CODEX_HOME; nothing leaves
loopback: the model provider is the local endpoint (no retries), update
checks, analytics, OpenTelemetry export, web search, plugins and apps are
off, and the model catalog is a local file (Codex would otherwise fetch it).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from openai_responses_model import ScriptedResponses

AGENTS_DIR = Path(os.environ.get("MCPF_AGENTS_DIR", str(Path.home() / ".cache/mcp-forensics/agents")))
# The native binary is the platform package's (install scripts are off).
CODEX_BIN = AGENTS_DIR / "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
MODEL = "scripted-model"


def available() -> str | None:
    """Why Codex cannot run here, or None."""
    if not CODEX_BIN.is_file():
        return f"Codex CLI is not installed at {CODEX_BIN} (scripts/setup.sh installs it)"
    return None


def version() -> str:
    out = subprocess.run([str(CODEX_BIN), "--version"], capture_output=True, text=True, timeout=60).stdout
    return out.split()[-1] if out.split() else "?"


def _env(home: Path) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CODEX_HOME": str(home / ".codex"),
            "TERM": "dumb", "LANG": "C.UTF-8", "SCRIPTED_API_KEY": "scripted-model-key", "NO_COLOR": "1"}


def _catalog(home: Path) -> Path:
    """A one-model catalog: the bundled catalog's last entry under our model's
    name, without the hosted search tool (the scripted model has none)."""
    path = home / "model-catalog.json"
    if path.exists():
        return path
    out = subprocess.run([str(CODEX_BIN), "debug", "models"], env=_env(home), capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"codex debug models exited {out.returncode}: {out.stderr[-2000:]}")
    models = json.loads(out.stdout)["models"]
    entry = dict(next((m for m in models if m.get("supported_in_api")), models[0]))
    entry.update({"slug": MODEL, "display_name": MODEL, "supports_search_tool": False, "upgrade": None, "availability_nux": None})
    path.write_text(json.dumps({"models": [entry]}))
    return path


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _config(home: Path, base_url: str, mcp_servers: dict) -> None:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    lines = [
        f"model = {_toml(MODEL)}", 'model_provider = "scripted"', 'approval_policy = "never"', 'sandbox_mode = "read-only"',
        "check_for_update_on_startup = false", f"model_catalog_json = {_toml(str(_catalog(home)))}", 'web_search = "disabled"',
        "", "[analytics]", "enabled = false",
        "", "[features]", *(f"{f} = false" for f in ("plugins", "remote_plugin", "apps", "tool_suggest", "skill_mcp_dependency_install", "shell_snapshot")),
        "", "[otel]", 'exporter = "none"',
        "", "[model_providers.scripted]", 'name = "scripted"', f"base_url = {_toml(base_url + '/v1')}", 'wire_api = "responses"',
        'env_key = "SCRIPTED_API_KEY"', "request_max_retries = 0", "stream_max_retries = 0",
    ]
    for name, server in mcp_servers.items():
        lines += ["", f"[mcp_servers.{name}]", f"command = {_toml(server['command'])}", f"args = {_toml(server.get('args', []))}",
                  f"env = {_toml(server.get('env', {}))}",
                  # Tools run without asking (exec has no one to ask), and the
                  # run waits for the server instead of racing its start.
                  'default_tools_approval_mode = "approve"', "required = true", "startup_timeout_sec = 30"]
    (codex_home / "config.toml").write_text("\n".join(lines) + "\n")


def mcp_add(home: Path, name: str, command: list[str] | None = None, url: str | None = None,
            env: dict | None = None, bearer_token_env_var: str | None = None) -> Path:
    """`codex mcp add`: Codex itself writes the server into CODEX_HOME/config.toml;
    returns that file."""
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    cmd = [str(CODEX_BIN), "mcp", "add", name]
    for k, v in (env or {}).items():
        cmd += ["--env", f"{k}={v}"]
    if url:
        cmd += ["--url", url] + (["--bearer-token-env-var", bearer_token_env_var] if bearer_token_env_var else [])
    else:
        cmd += ["--", *command]
    r = subprocess.run(cmd, env=_env(home), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"codex mcp add exited {r.returncode}: {r.stderr[-2000:]}")
    return home / ".codex" / "config.toml"


def run_session(home: Path, workdir: Path, mcp_servers: dict, steps: list[dict], prompt: str, json_out: Path,
                timeout: float = 180) -> dict:
    """Run one `codex exec --json`; return {"json": path, "rollouts": [paths], "requests": model requests}."""
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    with ScriptedResponses(steps) as model:
        _config(home, model.url, mcp_servers)
        cmd = [str(CODEX_BIN), "exec", "--json", "--skip-git-repo-check", "--sandbox", "read-only", prompt]
        with open(json_out, "wb") as out:
            r = subprocess.run(cmd, cwd=workdir, env=_env(home), stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"codex exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}")
        requests = list(model.requests)
    rollouts = sorted((home / ".codex" / "sessions").glob("*/*/*/rollout-*.jsonl"))
    return {"json": json_out, "rollouts": rollouts, "requests": requests}
