"""A gRPC client for the tests: calls test.Echo through TARGET and prints one JSON
object: the status code's name, details, the reply (or the streamed items) and the
trailing metadata.

usage: client.py TARGET unary|stream REQUEST [--key KEY] [--tls CA_FILE NAME]
"""
import json
import sys

import grpc


def main():
    target, method, request = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    args = sys.argv[4:]
    metadata = []
    if "--key" in args:
        metadata.append(("x-api-key", args[args.index("--key") + 1]))
    if "--tls" in args:
        i = args.index("--tls")
        with open(args[i + 1], "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(
            target, creds, options=(("grpc.ssl_target_name_override", args[i + 2]),)
        )
    else:
        channel = grpc.insecure_channel(target)
    out = {"code": "OK", "details": None, "reply": None, "trailers": {}}
    try:
        if method == "unary":
            call = channel.unary_unary("/test.Echo/Unary")
            reply, state = call.with_call(request, metadata=metadata, timeout=10)
            out["reply"] = reply.decode()
            out["trailers"] = dict(state.trailing_metadata() or ())
        else:
            call = channel.unary_stream("/test.Echo/Stream")
            out["reply"] = [item.decode() for item in call(request, metadata=metadata, timeout=10)]
    except grpc.RpcError as e:
        out["code"] = e.code().name
        out["details"] = e.details()
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
