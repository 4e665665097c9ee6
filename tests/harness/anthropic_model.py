"""A scripted stand-in for the Anthropic Messages API, for running the real
Claude Code CLI headless and offline: the CLI, its transcript, its MCP client
and the MCP traffic are real; only the model's answers are scripted.

    with ScriptedModel(steps) as model:
        env["ANTHROPIC_BASE_URL"] = model.url

`steps` is the list of assistant turns, in order: `{"tool_use": {"name":
"mcp__mail__sendEmail", "input": {...}}}` or `{"text": "..."}`. The request
that already holds i assistant messages gets step i (past the end: a closing
text). Requests offering no tools (side queries such as a session title) get
a short text. Answers are streamed as server-sent events when the request
asks for `stream` (Claude Code always does), as one JSON message otherwise.
Every request is kept in `model.requests` for tests to look at.
"""
from __future__ import annotations

import json
import threading
import uuid

from loopback_http import LoopbackServer, QuietHandler

CLOSING_TEXT = "Done."


def _usage() -> dict:
    return {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


class ScriptedModel(LoopbackServer):
    def __init__(self, steps: list[dict]):
        self.steps = steps
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        model = self

        class Handler(QuietHandler):
            def do_HEAD(self):
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self):
                self._json({})

            def do_POST(self):
                _, body = self.read_json()
                path = self.path.split("?")[0]
                with model._lock:
                    model.requests.append({"path": path, "body": body})
                if path.endswith("/count_tokens"):
                    return self._json({"input_tokens": 100})
                if not path.endswith("/v1/messages"):
                    return self._json({})
                content, stop = model.answer(body)
                if body.get("stream"):
                    self._stream(body.get("model", "scripted"), content, stop)
                else:
                    self._json({"id": _msg_id(), "type": "message", "role": "assistant", "model": body.get("model", "scripted"),
                                "content": content, "stop_reason": stop, "stop_sequence": None, "usage": _usage()})

            def _json(self, obj):
                self.send_json(obj, headers={"request-id": "req_" + uuid.uuid4().hex[:20]})

            def _stream(self, model_name, content, stop):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
                self.send_header("connection", "close")
                self.end_headers()

                def event(name, data):
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()

                event("message_start", {"type": "message_start", "message": {
                    "id": _msg_id(), "type": "message", "role": "assistant", "model": model_name, "content": [],
                    "stop_reason": None, "stop_sequence": None, "usage": {**_usage(), "output_tokens": 1}}})
                for i, block in enumerate(content):
                    if block["type"] == "text":
                        event("content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
                        event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": block["text"]}})
                    else:
                        event("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                            "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
                        # Arguments arrive in pieces, as from the real API.
                        js = json.dumps(block["input"])
                        for piece in (js[: len(js) // 2], js[len(js) // 2:]):
                            event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": piece}})
                    event("content_block_stop", {"type": "content_block_stop", "index": i})
                event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 20}})
                event("message_stop", {"type": "message_stop"})
                self.close_connection = True

        self._serve(Handler)

    def answer(self, body: dict) -> tuple[list[dict], str]:
        """The content blocks and stop reason of the next assistant turn."""
        if not body.get("tools"):
            return [{"type": "text", "text": "Session"}], "end_turn"
        turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        step = self.steps[turn] if turn < len(self.steps) else {"text": CLOSING_TEXT}
        if "tool_use" in step:
            call = step["tool_use"]
            return [{"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": call["name"], "input": call.get("input", {})}], "tool_use"
        return [{"type": "text", "text": step["text"]}], "end_turn"


def _msg_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]
