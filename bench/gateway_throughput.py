"""How fast the nginx gateway question is answered: GET /auth/verify against no-op routes.

All run under the same gunicorn configuration (deploy/gunicorn.conf.py), one after the other in
one run; wrk drives each with 64 connections for 20 s. /auth/verify carries a valid session
cookie, so every request checks the token and finds the session in the database (SQLite here).
Two baselines: a bare Flask app's no-op route (the target's), and a no-op route added to Cypher's
own app, where every app-wide hook costs what it costs on /auth/verify. Prints requests per
second, p50 and p99 of each and the ratios (target: the gateway keeps at least 70% of the bare
no-op route's throughput). From the repository root:
    .venv/bin/python bench/gateway_throughput.py [--seconds 20] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402

from tests.gunicorn_server import gunicorn  # noqa: E402
from tests.opaque_client import OpaqueActions  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gateway_throughput.json"
TARGET = 0.70
PASSWORD = "correct horse battery staple"


def session_cookie(client) -> str:  # type: ignore[no-untyped-def]
    """Register, enrol and log in through the HTTP API; returns the access token."""
    registered = OpaqueActions(client).register("bench.gateway", PASSWORD)
    bearer = {"Authorization": f"Bearer {registered.get_json()['enrollmentToken']}"}
    secret = client.request("POST", "/totp/setup", {}, bearer).get_json()["secret"]
    client.request("POST", "/totp/verify-setup", {"code": pyotp.TOTP(secret).now()}, bearer)
    pass_auth = OpaqueActions(client).login("bench.gateway", PASSWORD).get_json()["passAuthToken"]
    code = pyotp.TOTP(secret).at(time.time() + 30)
    return str(
        client.post("/totp/verify-login", json={"passAuthToken": pass_auth, "code": code}).get_json()["accessToken"]
    )


def wrk(url: str, seconds: int, connections: int, headers: list[str]) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *headers, url]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise SystemExit(f"{url}: {non_2xx.group(1)} requests failed:\n{output}")

    def latency_ms(percentile: str) -> float:
        value, unit = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    requests_per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    return {"requests_per_second": requests_per_second, "p50_ms": latency_ms("50"), "p99_ms": latency_ms("99")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    # Rate limits on, as in production (the test helper turns them off): the gateway must stay
    # fast with the limiter installed, although no limit covers it.
    production_like = {"CYPHER_RATELIMIT_ENABLED": "true"}
    with tempfile.TemporaryDirectory(prefix="cypher-gateway-") as tmp:
        with gunicorn(Path(tmp) / "cypher", production_like, workers=0) as cypher:
            token = session_cookie(cypher.client)
            gateway = wrk(
                f"http://127.0.0.1:{cypher.port}/auth/verify", args.seconds, args.connections,
                ["-H", f"Cookie: cypher_access={token}"],
            )  # fmt: skip
        with gunicorn(
            Path(tmp) / "cypher-noop", production_like, workers=0, app="bench.noop_app:cypher_app()"
        ) as server:
            cypher_noop = wrk(f"http://127.0.0.1:{server.port}/bench/noop", args.seconds, args.connections, [])
        with gunicorn(Path(tmp) / "noop", {}, workers=0, app="bench.noop_app:app") as noop_server:
            noop = wrk(f"http://127.0.0.1:{noop_server.port}/noop", args.seconds, args.connections, [])
    ratio = gateway["requests_per_second"] / noop["requests_per_second"]
    own_ratio = gateway["requests_per_second"] / cypher_noop["requests_per_second"]
    workers = int(os.environ.get("CYPHER_WORKERS", os.cpu_count() * 2 + 1))  # type: ignore[operator]
    run = f"wrk -c{args.connections} -d{args.seconds}s; {os.cpu_count()} CPUs"
    print(f"gunicorn, deploy/gunicorn.conf.py, {workers} workers; {run}")
    print(f"{'route':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, result in (
        ("GET /auth/verify (session)", gateway),
        ("GET /bench/noop (Cypher's app)", cypher_noop),
        ("GET /noop (bare Flask)", noop),
    ):
        print(f"{name:<34}{result['requests_per_second']:>10.0f}{result['p50_ms']:>10.2f}{result['p99_ms']:>10.2f}")
    print(
        f"gateway / bare Flask no-op: {ratio:.0%}   target >= {TARGET:.0%}: {'MET' if ratio >= TARGET else 'NOT MET'}"
    )
    print(f"gateway / Cypher no-op route (the token and session check alone): {own_ratio:.0%}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "gateway": gateway,
                "cypher_noop": cypher_noop,
                "noop": noop,
                "ratio": ratio,
                "ratio_to_cypher_noop": own_ratio,
                "target": TARGET,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
