"""A minimal MCP server on the official MCP SDK: one `echo(text)` tool that
returns its input. No SMTP, no state; it is what bench/record_overhead.py
measures the recorder against (the server's own cost is the SDK's).

Run by an MCP client over stdio:
    python echo_mcp_server.py
or as a Streamable HTTP server (endpoint http://127.0.0.1:8932/mcp; with
--stateless no sessions and plain JSON responses instead of SSE):
    python echo_mcp_server.py --http 127.0.0.1:8932 [--stateless] [--path /mcp]
"""
from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer

from loopback_http import parse_host_port


def build_server(name: str = "echo-mcp", log_level: str = "WARNING") -> MCPServer:
    # WARNING: no uvicorn access line per request (it would be measured too).
    server = MCPServer(name=name, version="1.0.0", log_level=log_level)

    @server.tool(name="echo", description="Return the text it is given.")
    def echo(text: str) -> str:
        return text

    return server



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="echo-mcp", help="serverInfo.name (default echo-mcp)")
    ap.add_argument("--http", metavar="HOST:PORT", default=None,
                    help="serve Streamable HTTP on HOST:PORT instead of stdio")
    ap.add_argument("--path", default="/mcp", help="the Streamable HTTP endpoint path (default /mcp)")
    ap.add_argument("--stateless", action="store_true",
                    help="with --http: stateless server (no Mcp-Session-Id), JSON responses instead of SSE")
    ap.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    a = ap.parse_args()
    if a.stateless and not a.http:
        ap.error("--stateless needs --http")
    server = build_server(a.name, a.log_level)
    if a.http is None:
        server.run("stdio")
    else:
        host, port = parse_host_port(ap, a.http)
        server.run("streamable-http", host=host, port=port, streamable_http_path=a.path,
                   stateless_http=a.stateless, json_response=a.stateless)


if __name__ == "__main__":
    main()
