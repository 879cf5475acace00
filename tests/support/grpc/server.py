"""A plaintext gRPC server for the tests (grpcio, no generated code: raw bytes).

test.Echo/Unary: "echo:" + the request, with trailing metadata x-trailer: t1;
  a request "slow" answers after 2 s, "fail" ends with NOT_FOUND "no such thing".
test.Echo/Stream: the request is a count N; answers item0 .. item(N-1).
Prints its port on stdout once it serves.
"""
import sys
import time
from concurrent import futures

import grpc


def unary(request, context):
    if request == b"slow":
        time.sleep(2)
    if request == b"fail":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    context.set_trailing_metadata((("x-trailer", "t1"),))
    return b"echo:" + request


def stream(request, context):
    for i in range(int(request)):
        yield f"item{i}".encode()


def main():
    handler = grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())
