#!/usr/bin/env python3
"""load-tests/server_hellos.py PORT SECONDS: count the TLS ServerHellos sent from
127.0.0.1:PORT on the loopback interface for SECONDS, and how many resumed a session.

Needs root (an AF_PACKET socket on `lo`); reads only, sends nothing. Prints one line:
  hellos=N full=F resumed=R versions=TLSv1.3:N ciphers=0x1302:N groups=0x001d:N
A TLS 1.3 ServerHello resumed a session if it carries the pre_shared_key extension; a
TLS 1.2 one if the server's flight goes on with ChangeCipherSpec (abbreviated handshake)
instead of its Certificate. Packets the kernel dropped under load are not seen (the
counts are a sample, the proportions hold).
"""
import collections
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
VERSIONS = {0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


def server_hello(payload):
    """(version, cipher, group, resumed) of a ServerHello at the start of payload, or None."""
    if len(payload) < 9 or payload[0] != 0x16 or payload[5] != 0x02:
        return None
    rec_len = struct.unpack("!H", payload[3:5])[0]
    hs_len = int.from_bytes(payload[6:9], "big")
    body = payload[9:9 + hs_len]
    if len(body) < hs_len or hs_len < 38:
        return None
    version = struct.unpack("!H", body[0:2])[0]
    i = 34
    i += 1 + body[i]                              # session id
    cipher = struct.unpack("!H", body[i:i + 2])[0]
    i += 3                                        # cipher suite, compression
    group, psk = None, False
    if i + 2 <= len(body):
        end = i + 2 + struct.unpack("!H", body[i:i + 2])[0]
        i += 2
        while i + 4 <= end:
            typ, n = struct.unpack("!HH", body[i:i + 4])
            data = body[i + 4:i + 4 + n]
            if typ == 43 and n == 2:              # supported_versions
                version = struct.unpack("!H", data)[0]
            elif typ == 51 and n >= 2:            # key_share
                group = struct.unpack("!H", data[0:2])[0]
            elif typ == 41:                       # pre_shared_key
                psk = True
            i += 4 + n
    if version == 0x0304:
        resumed = psk
    else:
        nxt = payload[5 + rec_len:]
        if len(nxt) > 5 and nxt[0] == 0x16 and nxt[5] == 0x02:   # hello + more in one record
            nxt = b""
        resumed = len(nxt) > 0 and nxt[0] == 0x14
    return version, cipher, group, resumed


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("lo", 0))
    s.settimeout(0.2)
    count = collections.Counter()
    versions, ciphers, groups = collections.Counter(), collections.Counter(), collections.Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame, addr = s.recvfrom(65600)
        except socket.timeout:
            continue
        if addr[2] == PACKET_OUTGOING or len(frame) < 14 + 20:
            continue                              # lo shows every packet twice
        if struct.unpack("!H", frame[12:14])[0] != 0x0800:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            continue
        tcp = ip[ihl:struct.unpack("!H", ip[2:4])[0]]
        if len(tcp) < 20 or struct.unpack("!H", tcp[0:2])[0] != port:
            continue
        hello = server_hello(tcp[(tcp[12] >> 4) * 4:])
        if hello is None:
            continue
        version, cipher, group, resumed = hello
        count["hellos"] += 1
        count["resumed" if resumed else "full"] += 1
        versions[VERSIONS.get(version, hex(version))] += 1
        ciphers["0x%04x" % cipher] += 1
        groups["0x%04x" % group if group is not None else "-"] += 1

    def fmt(c):
        return ",".join("%s:%d" % kv for kv in c.most_common()) or "-"
    print("hellos=%d full=%d resumed=%d versions=%s ciphers=%s groups=%s" % (
        count["hellos"], count["full"], count["resumed"], fmt(versions), fmt(ciphers), fmt(groups)))


if __name__ == "__main__":
    main()
