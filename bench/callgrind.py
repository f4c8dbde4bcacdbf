#!/usr/bin/env python3
"""Summarises a callgrind output file (one dump) per request: the top functions by inclusive
instructions (Ir) with their share of the total and their calls per request, then chosen
functions by name pattern (database, pool, JSON, signing, logging...).

    bench/callgrind.py FILE REQUESTS [--top N] [--pick REGEX ...]

Inclusive cost is a function's own instructions plus the inclusive cost of the calls it made
(as callgrind records them; calls of a function to itself are not counted twice). Rust hash
suffixes (::h0123...) are dropped, so monomorphised copies of one function are summed.
"""
import re
import sys
from collections import defaultdict

HASH = re.compile(r"::h[0-9a-f]{16}$")


def parse(path):
    names = {}
    self_cost = defaultdict(int)
    call_cost = defaultdict(int)  # inclusive cost of the calls made by a function
    calls = defaultdict(int)  # times a function was called
    total = 0
    cur = callee = None
    pending = False

    def name(spec):
        spec = spec.strip()
        m = re.match(r"\((\d+)\)(?: (.*))?$", spec)
        if m:
            if m.group(2) is not None:
                names[m.group(1)] = HASH.sub("", m.group(2))
            return names.get(m.group(1), "?")
        return HASH.sub("", spec)

    with open(path, errors="replace") as f:
        for line in f:
            if not line or line[0] == "\n":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending:
                    if callee != cur:
                        call_cost[cur] += cost
                    pending = False
                else:
                    self_cost[cur] += cost
            elif line.startswith("fn="):
                cur = name(line[3:])
            elif line.startswith("cfn="):
                callee = name(line[4:])
            elif line.startswith("calls="):
                calls[callee] += int(line[6:].split()[0])
                pending = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
    if not total:
        total = sum(self_cost.values())
    incl = {f: self_cost[f] + call_cost[f] for f in set(self_cost) | set(call_cost)}
    return total, incl, self_cost, calls


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    path, requests = args[0], max(1, int(args[1]))
    top, picks = 40, []
    rest = args[2:]
    while rest:
        a = rest.pop(0)
        if a == "--top":
            top = int(rest.pop(0))
        elif a == "--pick":
            picks.append(rest.pop(0))
    total, incl, self_cost, calls = parse(path)
    print(f"total {total:,} Ir for {requests:,} requests: {total / requests:,.0f} Ir per request\n")
    print("| inclusive | self | Ir per request (incl.) | calls per request | function |")
    print("|---:|---:|---:|---:|---|")
    for f, v in sorted(incl.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| {100 * v / total:.1f}% | {100 * self_cost[f] / total:.1f}% | {v / requests:,.0f} | "
              f"{calls[f] / requests:.2f} | `{f[:150]}` |")
    for p in picks:
        rx = re.compile(p)
        hits = sorted(((f, v) for f, v in incl.items() if rx.search(f)), key=lambda kv: -kv[1])[:12]
        print(f"\nmatching /{p}/:\n")
        print("| inclusive | self | calls per request | function |")
        print("|---:|---:|---:|---|")
        for f, v in hits:
            print(f"| {100 * v / total:.1f}% | {100 * self_cost[f] / total:.1f}% | {calls[f] / requests:.2f} | `{f[:150]}` |")
    print("\nfunctions by self cost:\n")
    print("| self | function |")
    print("|---:|---|")
    for f, v in sorted(self_cost.items(), key=lambda kv: -kv[1])[:25]:
        print(f"| {100 * v / total:.1f}% | `{f[:150]}` |")


if __name__ == "__main__":
    main()
