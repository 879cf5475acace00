"""Sends a WAF corpus to a proxy and scores the answers (for waf-compare.sh).

A corpus is JSON lines, one request a line: id, class ("benign" for ordinary requests),
attack (true/false), method, path (the request target, as sent), headers (name: value,
or name: [values] for a header sent more than once), body (text or null), content_type,
place. Each record is written as-is onto its own connection (HTTP/1.1), adding only
Host, Content-Type (from content_type), Content-Length (when the record has neither it
nor Transfer-Encoding) and `Connection: close` when the record lacks them.

usage:
  waf_corpus.py send --port PORT [--host NAME] [--timeout S] [--jobs N] CORPUS OUT
      writes OUT: one JSON line per record, its id and the answer's status (0: no
      answer), with `error` (timeout, reset, closed, garbled) when there was none.
  waf_corpus.py report --corpus CORPUS --paranoia N --proxy LABEL=RESULTS ...
      prints the comparison (markdown) of the proxies' results on CORPUS; the first
      proxy given is the reference the disagreements are listed against.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import socket
import sys
import time


def load_corpus(path):
    records, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except ValueError as e:
                sys.exit(f"{path}:{n}: not JSON: {e}")
            for key in ("id", "class", "attack", "method", "path", "headers"):
                if key not in r:
                    sys.exit(f"{path}:{n}: no '{key}'")
            if r["id"] in seen:
                sys.exit(f"{path}:{n}: id {r['id']} twice")
            seen.add(r["id"])
            records.append(r)
    return records


def header_lines(headers):
    for name, value in headers.items():
        for v in value if isinstance(value, list) else [value]:
            yield name, "" if v is None else str(v)


def raw_request(r, host):
    body = r.get("body")
    body = b"" if body is None else body.encode("utf-8")
    given = {name.strip().lower() for name, _ in header_lines(r["headers"])}
    lines = [f"{r['method']} {r['path']} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in header_lines(r["headers"])]
    if r.get("content_type") and "content-type" not in given:
        lines.append(f"Content-Type: {r['content_type']}")
    if r.get("body") is not None and not given & {"content-length", "transfer-encoding"}:
        lines.append(f"Content-Length: {len(body)}")
    if "connection" not in given:
        lines.append("Connection: close")
    return "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body


def send_one(r, port, host, timeout):
    """(status, error): the status of the first answer on the connection."""
    deadline = time.monotonic() + timeout
    data = raw_request(r, host)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return 0, "connect"
    buf = b""
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # refused before the body was read: the answer may still be there
        while b"\r\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0, "timeout"
            s.settimeout(left)
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                return 0, "timeout"
            except ConnectionResetError:
                return 0, "reset"
            if not chunk:
                return 0, "closed" if not buf else "garbled"
            buf += chunk
    finally:
        s.close()
    parts = buf.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1]), None
    return 0, "garbled"


def cmd_send(args):
    records = load_corpus(args.corpus)

    def one(r):
        status, error = send_one(r, args.port, args.host, args.timeout)
        out = {"id": r["id"], "status": status}
        if error:
            out["error"] = error
        return out

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, records))
    with open(args.out, "w", encoding="utf-8") as f:
        for res in results:
            f.write(json.dumps(res) + "\n")


# --- scoring ------------------------------------------------------------------------------

def outcome(status):
    if status == 0:
        return "no answer"
    if status == 403:
        return "403"
    if 400 <= status < 500:
        return "other 4xx"
    if status >= 500:
        return "5xx"
    return "passed"


def pct(n, total):
    return f"{100 * n / total:.1f}% ({n}/{total})" if total else "-"


def short_pct(n, total):
    return f"{100 * n / total:.0f}% ({n}/{total})" if total else "-"


def statuses(results, ids):
    c = collections.Counter(results[i]["status"] for i in ids)
    return ", ".join(f"{s or 'none'}×{n}" for s, n in sorted(c.items())) or "none"


def cmd_report(args):
    records = load_corpus(args.corpus)
    proxies = []
    for spec in args.proxy:
        label, _, path = spec.partition("=")
        with open(path, encoding="utf-8") as f:
            res = {}
            for line in f:
                if line.strip():
                    x = json.loads(line)
                    res[x["id"]] = x
        missing = [r["id"] for r in records if r["id"] not in res]
        if missing:
            sys.exit(f"{path}: no result for {len(missing)} records, e.g. {missing[0]}")
        proxies.append((label, res))

    attacks = [r for r in records if r["attack"]]
    ordinary = [r for r in records if not r["attack"]]
    name = os.path.basename(args.corpus)
    p = print
    p(f"#### {name}, paranoia {args.paranoia}: {len(attacks)} attacks, "
      f"{len(ordinary)} ordinary requests")
    p()
    p("| proxy | detected (403) | refused, any 4xx | false positives (403) "
      "| ordinary refused otherwise | no answer |")
    p("|---|---|---|---|---|---|")
    for label, res in proxies:
        det = sum(res[r["id"]]["status"] == 403 for r in attacks)
        any4 = sum(400 <= res[r["id"]]["status"] < 500 for r in attacks)
        fp = sum(res[r["id"]]["status"] == 403 for r in ordinary)
        other = [r["id"] for r in ordinary
                 if outcome(res[r["id"]]["status"]) in ("other 4xx", "5xx")]
        none = sum(res[r["id"]]["status"] == 0 for r in records)
        other_s = f"{len(other)} ({statuses(res, other)})" if other else "0"
        p(f"| {label} | {pct(det, len(attacks))} | {pct(any4, len(attacks))} "
          f"| {pct(fp, len(ordinary))} | {other_s} | {none} |")
    p()

    def by(key, title):
        groups = collections.defaultdict(list)
        for r in records:
            groups[r.get(key) or "-"].append(r)
        head = f"| {title} | attacks | " + " | ".join(
            f"{label}: detected" for label, _ in proxies)
        if key == "place":
            head += " | ordinary | " + " | ".join(f"{label}: FP" for label, _ in proxies)
        head += " |"
        p(head)
        p("|---" * (head.count("|") - 1) + "|")
        for g in sorted(groups, key=lambda g: (g == "benign", g)):
            if g == "benign":
                continue
            att = [r for r in groups[g] if r["attack"]]
            row = f"| {g} | {len(att)} | "
            cells = []
            for _, res in proxies:
                d = sum(res[r["id"]]["status"] == 403 for r in att)
                a = sum(400 <= res[r["id"]]["status"] < 500 for r in att)
                cell_ = short_pct(d, len(att))
                cells.append(cell_ + (f"; any 4xx {a}" if a != d else ""))
            row += " | ".join(cells)
            if key == "place":
                ben = [r for r in groups[g] if not r["attack"]]
                row += f" | {len(ben)} | " + " | ".join(
                    short_pct(sum(res[r["id"]]["status"] == 403 for r in ben), len(ben))
                    for _, res in proxies)
            p(row + " |")
        p()

    p("By class (detected: 403; \"any 4xx\" where other refusals add to it):")
    p()
    by("class", "class")
    p("By place (FP: ordinary requests refused with 403):")
    p()
    by("place", "place")

    # Disagreements: the two proxies' outcomes differ (403, other 4xx, passed, 5xx, no
    # answer). Grouped by the pair of statuses, attacks first, then ordinary requests.
    (la, ra), (lb, rb) = proxies
    diff = [r for r in records
            if outcome(ra[r["id"]]["status"]) != outcome(rb[r["id"]]["status"])]

    def cell(res, r):
        x = res[r["id"]]
        return f"{x['status']} ({x['error']})" if x.get("error") else str(x["status"])

    only_a = sum(ra[r["id"]]["status"] == 403 and rb[r["id"]]["status"] != 403 for r in attacks)
    only_b = sum(rb[r["id"]]["status"] == 403 and ra[r["id"]]["status"] != 403 for r in attacks)
    fp_a = sum(ra[r["id"]]["status"] == 403 and rb[r["id"]]["status"] != 403 for r in ordinary)
    fp_b = sum(rb[r["id"]]["status"] == 403 and ra[r["id"]]["status"] != 403 for r in ordinary)
    p(f"Disagreements: {len(diff)} records. Attacks only {la} refuses with 403: {only_a}, "
      f"only {lb}: {only_b}; ordinary requests only {la} refuses with 403: {fp_a}, only "
      f"{lb}: {fp_b}. By status ({la} → {lb}), each as id class/place (ordinary: id place):")
    p()
    groups = collections.defaultdict(list)
    for r in diff:
        groups[(not r["attack"], cell(ra, r), cell(rb, r))].append(r)
    for key in sorted(groups, key=lambda k: (k[0], -len(groups[k]), k[1], k[2])):
        ordinary_, sa, sb = key
        rs = sorted(groups[key], key=lambda r: (r["class"], r["id"]))
        p(f"- {'ordinary' if ordinary_ else 'attacks'}, {sa} → {sb} ({len(rs)}): " + ", ".join(
            f"{r['id']} {r.get('place') or '-'}" if ordinary_ else
            f"{r['id']} {r['class']}/{r.get('place') or '-'}" for r in rs))
    if diff:
        p()
    both = sorted((r for r in attacks if ra[r["id"]]["status"] < 400
                   and rb[r["id"]]["status"] < 400), key=lambda r: (r["class"], r["id"]))
    if both:
        p(f"Attacks both let through ({len(both)}): " + ", ".join(
            f"{r['id']} {r['class']}/{r.get('place') or '-'}" for r in both))
        p()
    for label, res in proxies:
        odd = [r["id"] for r in records if res[r["id"]]["status"] == 0
               or res[r["id"]]["status"] >= 500]
        if odd:
            p(f"{label}: no answer or 5xx for " + ", ".join(
                f"{i} ({cell(res, {'id': i})})" for i in odd) + ".")
            p()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", default="localhost", help="Host header when the record has none")
    s.add_argument("--timeout", type=float, default=5.0, help="seconds per record")
    s.add_argument("--jobs", type=int, default=8, help="connections at a time")
    s.add_argument("corpus")
    s.add_argument("out")
    r = sub.add_parser("report")
    r.add_argument("--corpus", required=True)
    r.add_argument("--paranoia", required=True)
    r.add_argument("--proxy", action="append", required=True, help="LABEL=RESULTS (two)")
    args = ap.parse_args()
    if args.cmd == "send":
        cmd_send(args)
    else:
        if len(args.proxy) != 2:
            sys.exit("report: give two --proxy LABEL=RESULTS")
        cmd_report(args)


if __name__ == "__main__":
    main()
