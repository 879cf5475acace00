"""A real OTLP/HTTP trace receiver for the tests: decodes each export's protobuf with
the opentelemetry-proto package and prints every span as one JSON line.

Usage: collector.py [--status CODE] [--hang]
  First line on stdout: the port it listens on (127.0.0.1, picked by the system).
  --status CODE  answer every export with CODE (default 200)
  --hang         never answer an export (a collector that is stuck)
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

STATUS = int(sys.argv[sys.argv.index("--status") + 1]) if "--status" in sys.argv else 200
HANG = "--hang" in sys.argv
LOCK = threading.Lock()


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if HANG:
            time.sleep(3600)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        lines = []
        for resource_spans in export.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append(json.dumps({
                        "path": self.path,
                        "content_type": self.headers.get("content-type"),
                        "api_key": self.headers.get("x-api-key"),
                        "service": resource.get("service.name"),
                        "scope": scope_spans.scope.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "trace_state": span.trace_state,
                        "name": span.name,
                        "kind": span.kind,
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "attributes": attributes(span.attributes),
                        "events": [
                            {"name": e.name, "attributes": attributes(e.attributes)}
                            for e in span.events
                        ],
                        "status": span.status.code,
                    }))
        with LOCK:
            for line in lines:
                print(line, flush=True)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(STATUS)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
