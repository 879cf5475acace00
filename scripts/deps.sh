#!/usr/bin/env bash
# Installs the system packages tollgate's build and tests need, only when missing:
# cmake (libz-ng-sys, aws-lc-sys), pkg-config and the OpenSSL headers (pingora's
# openssl flavour, linked against the system library; see .cargo/config.toml), a C
# compiler, protoc (the etcd-client crate generates its gRPC code with it),
# redis-server, etcd (server and etcdctl), haproxy and pebble (the tests start their
# own, on free loopback ports: haproxy as a TCP balancer sending PROXY headers, pebble
# as an ACME CA with pebble-challtestsrv as its DNS), logrotate (the shipped
# systemd/tollgate.logrotate is run against a tollgate under load), chromium (headless:
# the console's test drives it), prometheus (promtool checks observability/'s rules, and
# a real Prometheus scrapes a real tollgate in the tests), and
# Python's grpcio (the gRPC server and client of the tests) and opentelemetry-proto
# (the OTLP receiver of the tracing tests).
set -euo pipefail

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v cc >/dev/null || missing+=(build-essential)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v python3 >/dev/null || missing+=(python3)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v pebble >/dev/null || missing+=(pebble)
[ -x /usr/sbin/logrotate ] || missing+=(logrotate)
command -v chromium >/dev/null || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

if ! python3 -c 'import grpc' 2>/dev/null; then
  echo "installing: grpcio for $(command -v python3)"
  if [ "$(command -v python3)" = /usr/bin/python3 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-grpcio
  else
    python3 -m pip install --quiet grpcio
  fi
  python3 -c 'import grpc'
fi

if ! python3 -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
  echo "installing: opentelemetry-proto for $(command -v python3)"
  if [ "$(command -v python3)" = /usr/bin/python3 ]; then
    # Debian packages no opentelemetry-proto: pip, beside the system's packages.
    if ! python3 -m pip --version >/dev/null 2>&1; then
      sudo_cmd=()
      [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
      "${sudo_cmd[@]}" apt-get update -qq
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-pip
    fi
    python3 -m pip install --quiet --break-system-packages opentelemetry-proto
  else
    python3 -m pip install --quiet opentelemetry-proto
  fi
  python3 -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2'
fi
