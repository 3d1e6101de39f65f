"""REST API load test on loopback: churn predictions and recommendations (warm caches) next to a bare FastAPI endpoint.

Starts `ownlens-ml serve` on a warehouse with trained churn and recommendation models (e.g. after `ownlens-ml demo`) and a
bare FastAPI app returning a constant, both under uvicorn with OMP_NUM_THREADS=1, then drives each with an
asyncio load generator (raw keep-alive HTTP/1.1) at several concurrencies for a fixed time. The generator shares
the 2 cores with the server: numbers are what one box can do end to end.

    OWNLENS_HOME=~/.ownlens python benchmarks/api.py --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time

import numpy as np

BARE_APP = "from fastapi import FastAPI\napp = FastAPI()\n@app.get('/')\nasync def root():\n    return {'ok': True}\n"


def _users(n: int) -> list[str]:
    code = ("import json; from ownlens.ml.warehouse import connect; from ownlens.ml.data.loaders import latest_feature_date; "
            "c = connect(); d = latest_feature_date(c); "
            f"print(json.dumps([u for (u,) in c.query('SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {{d:Date}} LIMIT {n}', parameters={{'d': d}}).result_rows]))")
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def _wait(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


async def _load(base: str, paths: list[str], concurrency: int, seconds: float) -> dict:
    """``concurrency`` keep-alive connections, each sending the next GET as soon as the last answer is in.

    Raw asyncio streams rather than an HTTP client library: at these rates the generator itself must
    cost far less than the server, or it measures itself.
    """
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker():
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.transport.get_extra_info("socket").setsockopt(6, 1, 1)  # TCP_NODELAY: no Nagle delay
        while time.perf_counter() < stop:
            path = random.choice(paths)
            t = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            errors += not head.startswith(b"HTTP/1.1 200")
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(ms), "errors": errors, "rps": round(len(ms) / elapsed),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


async def _warm(base: str, paths: list[str], connections: int = 8) -> None:
    queue = list(paths)

    async def worker():
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        while queue:
            writer.write(f"GET {queue.pop()} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))


def _run(coro):
    try:
        import uvloop  # the generator must cost far less than the server: the faster event loop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--out")
    args = p.parse_args()
    users = _users(args.users)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open("/tmp/ownlens_bare_app.py", "w") as fh:
        fh.write(BARE_APP)
    server = subprocess.Popen([sys.executable, "-m", "ownlens.ml.cli", "serve", "--port", "8811"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "ownlens_bare_app:app", "--port", "8812", "--log-level", "warning",
                             "--no-access-log"], env={**env, "PYTHONPATH": "/tmp"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(["python", *sys.argv]),
               "users": len(users), "churn": [], "recommendations": [], "bare": []}
    try:
        _wait("http://127.0.0.1:8811/ready")
        _wait("http://127.0.0.1:8812/")
        churn_paths = [f"/predict/churn/{u}" for u in users]
        rec_paths = [f"/recommendations/{u}" for u in users]
        started = time.perf_counter()
        _run(_warm("http://127.0.0.1:8811", rec_paths))  # every user once, cold: read from customer_recommendations
        results["recommendations_cold_s_per_user"] = round((time.perf_counter() - started) / len(users), 5)
        for c in (int(x) for x in args.concurrency.split(",")):
            for name, base, paths in (("bare", "http://127.0.0.1:8812", ["/"]), ("churn", "http://127.0.0.1:8811", churn_paths),
                                      ("recommendations", "http://127.0.0.1:8811", rec_paths)):
                if name != "bare":  # warm means warm: the server's caches keep answers for 60 s, so refresh them first
                    _run(_warm(base, paths))
                r = _run(_load(base, paths, c, args.seconds))
                results[name].append(r)
                print(name, r, flush=True)
    finally:
        for proc in (server, bare):
            proc.terminate()
            proc.wait(10)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
