"""OpenTelemetry from the official MCP SDK itself, written to an OTLP JSON file.

The Python MCP SDK (2.x) opens a span around every message it sends (a
CLIENT span `MCP send tools/call NAME`, attributes `mcp.method.name` and
`jsonrpc.request.id`) and every request it serves (a SERVER span
`tools/call NAME` with `gen_ai.tool.name`); it records no arguments and no
result. Those spans are exported here by the OpenTelemetry SDK's own OTLP
JSON file exporter (one export request per line), so the file is what an
SDK-built agent that ships only telemetry leaves behind.

    provider = sdk_otel.export_to(path, service_name="mail-agent")
    ... run the MCP client or server ...
    provider.shutdown()

The server side is switched on by the environment (MCPF_OTEL_FILE), so the
stdio tap and the shim need not know about it.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_FILE = "MCPF_OTEL_FILE"


def export_to(path: Path | str, service_name: str, service_version: str | None = None):
    """Install a tracer provider that writes every span to `path` (appending)
    as it ends; returns it, to be shut down (flushed) when the process is done."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    attributes = {"service.name": service_name}
    if service_version:
        attributes["service.version"] = service_version
    provider = TracerProvider(resource=Resource.create(attributes))
    # Simple (not batched): a span is on disk when its call returns, so a
    # killed process loses nothing that finished.
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(str(path))))
    trace.set_tracer_provider(provider)
    return provider


def export_from_env(service_name: str, service_version: str | None = None):
    """`export_to` the file named by MCPF_OTEL_FILE, or None when it is unset."""
    path = os.environ.get(ENV_FILE)
    return export_to(path, service_name, service_version) if path else None
