"""A long load on loopback: does the API hold (no server errors), does memory stay flat, does /metrics stay small?

Starts `ownlens-ml serve` on a warehouse with trained models (e.g. after `ownlens-ml demo`) and drives it with
`--concurrency` keep-alive connections for `--seconds`, each request drawn from a mix of what a real and a careless
client send: one user's churn (known users), a batch of 20 users (POST), an unknown user (404), a malformed id (422)
and a random path that matches no route (404; each one new, so an unbounded metrics label would grow /metrics).
Reports statuses, p50/p99 latency, the server's resident memory and the size of /metrics at the start and the end.

    OWNLENS_HOME=~/.ownlens python benchmarks/soak.py --seconds 600 --concurrency 64 --out benchmarks/results/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid

import numpy as np
from api import _run, _users, _wait

PORT = 8813


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def _metrics_bytes() -> int:
    import httpx

    return len(httpx.get(f"http://127.0.0.1:{PORT}/metrics", timeout=30).content)


def _request(users: list[str]) -> tuple[str, str, bytes]:
    kind = random.random()
    if kind < 0.6:
        return "churn", f"/predict/churn/{random.choice(users)}", b""
    if kind < 0.7:
        return "batch", "/predict/churn", json.dumps({"user_ids": random.sample(users, 20)}).encode()
    if kind < 0.8:
        return "unknown user", f"/predict/churn/{uuid.uuid4()}", b""
    if kind < 0.9:
        return "malformed id", f"/predict/churn/{uuid.uuid4().hex[:9]}", b""
    return "no route", f"/{uuid.uuid4().hex}/{random.randint(0, 10**9)}", b""


async def _load(users: list[str], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    statuses: dict[str, dict[str, int]] = {}
    failures = 0
    stop = time.perf_counter() + seconds

    async def worker():
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        while time.perf_counter() < stop:
            kind, path, body = _request(users)
            method = "POST" if body else "GET"
            head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                    + ("Content-Type: application/json\r\n" if body else "") + "\r\n").encode()
            t = time.perf_counter()
            try:
                writer.write(head + body)
                answer = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in answer.split(b"\r\n") if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError):
                failures += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
                continue
            latencies.append(time.perf_counter() - t)
            by_kind.setdefault(kind, []).append(latencies[-1])
            status = answer.split(b" ", 2)[1].decode()
            statuses.setdefault(kind, {}).setdefault(status, 0)
            statuses[kind][status] += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    server_errors = sum(n for by in statuses.values() for s, n in by.items() if s.startswith("5"))
    return {"concurrency": concurrency, "seconds": round(elapsed), "requests": len(ms), "rps": round(len(ms) / elapsed),
            "server_errors": server_errors, "connection_failures": failures, "statuses": statuses,
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "by_kind_p50_p99_ms": {k: [round(float(np.percentile(v, q)) * 1000, 1) for q in (50, 99)] for k, v in by_kind.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--out")
    args = p.parse_args()
    users = _users(args.users)
    server = subprocess.Popen([sys.executable, "-m", "ownlens.ml.cli", "serve", "--port", str(PORT)],
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(["python", *sys.argv]),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    try:
        _wait(f"http://127.0.0.1:{PORT}/ready", timeout=120)
        results |= {"rss_mb_start": round(_rss_mb(server.pid), 1), "metrics_bytes_start": _metrics_bytes()}
        results["load"] = _run(_load(users, args.concurrency, args.seconds))
        results |= {"rss_mb_end": round(_rss_mb(server.pid), 1), "metrics_bytes_end": _metrics_bytes()}
    finally:
        server.terminate()
        server.wait(30)
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
