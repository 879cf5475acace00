#!/usr/bin/env python3
"""A small origin for a first run: scripts/run.sh starts it on 127.0.0.1:9001, the
target of conf/tollgate.toml's `app` upstream. It answers /healthz with "ok" (the
upstream's health check) and every other request with JSON describing the request as
it arrived, so a newcomer sees what tollgate sent on: the path after strip_prefix, the
headers it added (x-forwarded-for, x-request-id, x-gateway) and those it removed.

Usage: demo-origin.py [HOST:PORT]   (default 127.0.0.1:9001)
"""
import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 1 << 20


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tollgate-demo-origin"

    def setup(self):
        super().setup()
        # Headers and body are two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold the body back 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        target = urlsplit(self.path)
        if target.path == "/healthz":
            payload, kind = b"ok\n", "text/plain"
        else:
            seen = {
                "origin": "demo",
                "method": self.command,
                "path": target.path,
                "query": target.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_bytes": len(body),
            }
            payload, kind = (json.dumps(seen, indent=2) + "\n").encode(), "application/json"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = answer

    def log_message(self, *args):
        pass


def main():
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9001").rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Echo)
    print(f"demo origin on http://{host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
