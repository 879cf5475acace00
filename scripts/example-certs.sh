#!/usr/bin/env bash
# Regenerates the example certificates conf/tls.toml uses (conf/certs/). They are for
# trying tollgate out on loopback only: the server key is public, being in the repo.
#
#   example.pem / example.key   self-signed server certificate: localhost, *.example.test,
#                               127.0.0.1 (EC P-256, 10 years)
#   clients-ca.pem              a CA for client certificates (its key is not kept)
#   internal-ca.pem             a CA for upstream certificates (its key is not kept)
set -euo pipefail

out="$(cd "$(dirname "$0")/.." && pwd)/conf/certs"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,DNS:*.example.test,IP:127.0.0.1" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$out/example.key" -out "$out/example.pem" 2>/dev/null

for ca in clients-ca internal-ca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=tollgate example $ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tmp/$ca.key" -out "$out/$ca.pem" 2>/dev/null
done
echo "wrote $out: example.pem example.key clients-ca.pem internal-ca.pem"
