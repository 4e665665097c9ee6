"""A scripted stand-in for the OpenAI Responses API, for running the real
Codex CLI headless and offline: the CLI, its rollout, its MCP client and the
MCP traffic are real; only the model's answers are scripted.

    with ScriptedResponses(steps) as model:
        config base_url = model.url + "/v1"

`steps` is the list of model turns, in order: `{"call": {"namespace":
"mcp__mail", "name": "send_email", "arguments": {...}}}` or `{"text":
"..."}`. The request whose input holds i function-call outputs gets step i
(past the end: a closing text), so each tool result moves the script on.
Codex only speaks `POST /v1/responses` with `stream: true`; answers are
server-sent events (`response.output_item.done` per item, then
`response.completed`). Every request is kept in `model.requests`.
"""
from __future__ import annotations

import json
import threading
import uuid

from loopback_http import LoopbackServer, QuietHandler

CLOSING_TEXT = "Done."


def _usage() -> dict:
    return {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 120}


def _item(step: dict) -> dict:
    if "call" in step:
        call = step["call"]
        return {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:24], "call_id": "call_" + uuid.uuid4().hex[:24],
                "namespace": call["namespace"], "name": call["name"], "arguments": json.dumps(call["arguments"]),
                "status": "completed"}
    return {"type": "message", "id": "msg_" + uuid.uuid4().hex[:24], "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": step.get("text", CLOSING_TEXT), "annotations": []}]}


class ScriptedResponses(LoopbackServer):
    def __init__(self, steps: list[dict]):
        self.steps = steps
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        model = self

        class Handler(QuietHandler):
            def do_GET(self):
                self.send_json({"data": [], "models": []})

            def do_POST(self):
                _, body = self.read_json()
                path = self.path.split("?")[0]
                with model._lock:
                    model.requests.append({"path": path, "body": body})
                if not path.endswith("/responses"):
                    return self.send_json({})
                self._stream(model.answer(body))

            def _stream(self, item: dict):
                rid = "resp_" + uuid.uuid4().hex[:24]
                events = [
                    ("response.created", {"type": "response.created", "response": {"id": rid, "status": "in_progress", "output": []}}),
                    ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
                    ("response.completed", {"type": "response.completed",
                                            "response": {"id": rid, "status": "completed", "output": [item], "usage": _usage()}}),
                ]
                data = b"".join(f"event: {name}\ndata: {json.dumps(ev)}\n\n".encode() for name, ev in events)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._serve(Handler)

    def answer(self, body: dict) -> dict:
        """The step for this request: one per tool output already in its input."""
        items = body.get("input") if isinstance(body.get("input"), list) else []
        done = sum(1 for i in items if isinstance(i, dict) and i.get("type") == "function_call_output")
        step = self.steps[done] if done < len(self.steps) else {"text": CLOSING_TEXT}
        return _item(step)

