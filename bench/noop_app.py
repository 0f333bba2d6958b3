"""A bare Flask app with one no-op route: the baseline for bench/gateway_throughput.py."""

from flask import Flask

app = Flask(__name__)


@app.get("/noop")
def noop() -> str:
    return ""
