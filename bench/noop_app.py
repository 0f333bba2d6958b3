"""No-op routes, the baselines for bench/gateway_throughput.py.

`app`: a bare Flask app with one no-op route. `cypher_app`: Cypher itself with one extra no-op
route, so every app-wide hook (request ids, metrics, security headers, rate limiter) runs on it
as on /auth/verify; the difference from the gateway is then the token and session check alone.
"""

from flask import Flask

from cypher import create_app

app = Flask(__name__)


@app.get("/noop")
def noop() -> str:
    return ""


def cypher_app() -> Flask:
    """gunicorn's factory form, `bench.noop_app:cypher_app()`: built in each worker."""
    cypher = create_app()
    cypher.add_url_rule("/bench/noop", "bench_noop", noop)
    return cypher
