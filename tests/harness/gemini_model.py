"""A scripted stand-in for the Gemini API (generativelanguage v1beta), for
running the real Gemini CLI headless and offline: the CLI, its chat
recording, its MCP client and the MCP traffic are real; only the model's
answers are scripted.

    with ScriptedGemini(steps) as model:
        env GOOGLE_GEMINI_BASE_URL=model.url, GEMINI_API_KEY=<dummy>

`steps` is the list of model turns, in order: `{"call": {"name":
"mcp_mail_send_email", "args": {...}}}` or `{"text": "..."}`. A request
whose contents hold i function responses gets step i (past the end: a
closing text), so each tool result moves the script on. Only requests that
offer the scripted tools (the agent's own turns) follow the script; any
other generation (a side request without tools) gets a short text.

Gemini CLI streams turns with `POST /v1beta/models/M:streamGenerateContent?alt=sse`
(server-sent `data:` events, each a GenerateContentResponse); the endpoint
also answers `:generateContent`, `:countTokens`, `:embedContent` and
`GET /v1beta/models`. Every request is kept in `model.requests`.
"""
from __future__ import annotations

import json
import threading

from loopback_http import LoopbackServer, QuietHandler

CLOSING_TEXT = "Done."


def _usage() -> dict:
    return {"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120}


def _parts(step: dict) -> list[dict]:
    if "call" in step:
        return [{"functionCall": {"name": step["call"]["name"], "args": step["call"].get("args", {})}}]
    return [{"text": step.get("text", CLOSING_TEXT)}]


def _response(parts: list[dict], model: str) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": _usage(), "modelVersion": model, "responseId": "scripted"}


def _offers_tools(body: dict) -> bool:
    return any(t.get("functionDeclarations") for t in body.get("tools") or [] if isinstance(t, dict))


class ScriptedGemini(LoopbackServer):
    def __init__(self, steps: list[dict]):
        self.steps = steps
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        model = self

        class Handler(QuietHandler):
            def _record(self, method: str, body) -> tuple[str, str, str]:
                path, _, query = self.path.partition("?")
                with model._lock:
                    model.requests.append({"method": method, "path": path, "query": query, "body": body})
                name, _, verb = path.rpartition("/")[2].partition(":")
                return path, name, verb

            def do_GET(self):
                path, name, _ = self._record("GET", None)
                if path.rstrip("/").endswith("/models"):
                    return self.send_json({"models": []})
                self.send_json({"name": f"models/{name}", "supportedGenerationMethods": ["generateContent", "countTokens"]})

            def do_POST(self):
                _, body = self.read_json()
                _, name, verb = self._record("POST", body)
                body = body if isinstance(body, dict) else {}
                if verb == "countTokens":
                    return self.send_json({"totalTokens": 100})
                if verb in ("embedContent", "batchEmbedContents"):
                    return self.send_json({"embedding": {"values": [0.0] * 8}})
                if verb not in ("generateContent", "streamGenerateContent"):
                    return self.send_json({"error": {"code": 404, "message": f"scripted Gemini: no {self.path}", "status": "NOT_FOUND"}}, 404)
                answer = _response(model.answer(body), name)
                if verb == "generateContent":
                    return self.send_json(answer)
                data = f"data: {json.dumps(answer)}\r\n\r\n".encode()
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._serve(Handler)

    def answer(self, body: dict) -> list[dict]:
        """The parts for this request: the script's step (one per function
        response already in its contents) when it offers tools, else a text."""
        if not _offers_tools(body):
            return [{"text": CLOSING_TEXT}]
        done = sum(1 for c in body.get("contents") or [] if isinstance(c, dict)
                   for p in c.get("parts") or [] if isinstance(p, dict) and "functionResponse" in p)
        return _parts(self.steps[done] if done < len(self.steps) else {"text": CLOSING_TEXT})
