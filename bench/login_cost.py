"""What a complete login costs the server: Cypher's OPAQUE + TOTP login against an argon2-cffi verify.

Median and p90 in ms, after warm-up, of:
(1) /login/init + /login/finish + /totp/verify-login of create_app() on a temporary SQLite database
    and keys file, rate limits on as deployed (each account from an address of its own), timed
    inside the WSGI call (what gunicorn calls), driven by the Flask test client,
    with the client's crypto (Argon2 included) outside the clock and run between batches, not
    between the timed steps; also /login/init for an unknown name, and the three timed around the
    test client (its environ building and response wrapping included);
(2) bare libopaque CreateCredentialResponse + UserAuth on a prepared record, in the same batches as
    (1) and shaped like them, so that both meet the same caches and the same state of the VM; and
    the same again in batches of their own after (1), for comparison;
(3) argon2-cffi PasswordHasher() defaults, verify() of the right password.
Prints the ratios argon2 / complete login (target >= 50) and complete login / bare libopaque (for
information), writes bench/results/login_cost.json, never asserts on timing. From the repository root:
    .venv/bin/python bench/login_cost.py [--rounds 200] [--argon2-rounds 30] [--warmup 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, bench/ is on the path but the repository root is not

import argon2  # noqa: E402
import opaque  # noqa: E402
import pyotp  # noqa: E402
import pysodium  # noqa: E402

from cypher import create_app  # noqa: E402
from cypher.services.clock import ManualClock, system_clock  # noqa: E402
from tests.auth_actions import AuthActions, Enrolled  # noqa: E402
from tests.opaque_client import b64, finish_login, ids, start_login, unb64  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "login_cost.json"
USERNAME, PASSWORD, SERVER_ID = "bench.user", "correct horse battery staple", "cypher.bench"
TARGET_ARGON2_RATIO = 50.0  # the complete login costs the server at least 50 times less than argon2
BATCH = 25  # logins per batch: well inside the 60 s a login id lives
Parts = tuple[float, ...]  # the seconds timed in one round, one entry per timed stretch


def measure(step: Callable[[], Parts], warmup: int, rounds: int) -> list[Parts]:
    for _ in range(warmup):
        step()
    return [step() for _ in range(rounds)]


def summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return {"rounds": len(ms), "median_ms": statistics.median(ms), "p90_ms": p90, "min_ms": ms[0]}


class WsgiTimer:
    """A WSGI app that keeps the seconds its last call took, until its body was produced."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self._wsgi_app = wsgi_app
        self.last_seconds = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        t0 = time.perf_counter()
        response = self._wsgi_app(environ, start_response)
        try:
            body = b"".join(response)
        finally:
            getattr(response, "close", lambda: None)()
        self.last_seconds = time.perf_counter() - t0
        return [body]


def complete_login_http(rounds: int, warmup: int, bare: BareLibopaque) -> list[Parts]:
    """Server seconds of /login/init, /login/finish, /totp/verify-login and /login/init for an
    unknown name, and the first three timed around the test client, per login."""
    clock = ManualClock()
    with tempfile.TemporaryDirectory(prefix="cypher-bench-") as tmp:
        os.environ["CYPHER_INSTANCE_PATH"] = tmp  # keep create_app() out of the repository's instance/
        app = create_app(
            {
                "TESTING": True,
                "COOKIE_SECURE": False,
                "SERVER_ID": SERVER_ID,
                "CLOCK": clock,
                # Rate limits on, as deployed (the defaults: 30 per minute per address and endpoint,
                # in memory); each account logs in from an address of its own, as people do.
                "RATELIMIT_ENABLED": True,
                "DATABASE_URL": f"sqlite:///{tmp}/cypher.db",
                "KEYS_FILE": f"{tmp}/keys.json",
            }
        )
        actions = AuthActions(app.test_client(), clock)
        # One account per login of a batch: a TOTP step is accepted once per account, so each
        # batch logs every account in once, then the clock moves on to the next step.
        # Enrolled from the test client's one address: BATCH stays under the default 30 a minute.
        users = [actions.enrol(f"bench.user{number}", PASSWORD) for number in range(BATCH)]
        addresses = {user.username: f"203.0.113.{number + 1}" for number, user in enumerate(users)}

        def address(user: Enrolled) -> str:
            return addresses[user.username]

        # Server time is taken inside the WSGI call, as gunicorn makes it: all that Flask and
        # Cypher do for a request, body included. The test client's own work (building the
        # environ, wrapping the response) stands in for the HTTP server in front and is timed
        # apart. Bodies are encoded before the clock starts; no cookie jar (the server still
        # sets every cookie).
        timer = WsgiTimer(app.wsgi_app)
        app.wsgi_app = timer  # type: ignore[method-assign]
        client = app.test_client(use_cookies=False)

        def timed_post(path: str, body: dict[str, str], address: str) -> tuple[tuple[float, float], Any]:
            """(seconds inside the WSGI call, seconds around the test client), and the response."""
            data = json.dumps(body).encode()
            environ = {"REMOTE_ADDR": address}
            t0 = time.perf_counter()
            response = client.post(path, data=data, content_type="application/json", environ_overrides=environ)
            assert response.status_code != 429, f"rate limited: {response.get_json()}"  # the bench's own pace
            return (timer.last_seconds, time.perf_counter() - t0), response

        def login_batch(count: int) -> list[Parts]:
            # Every /login/init, then the clients' Argon2 (untimed), then every /login/finish and
            # /totp/verify-login. Interleaving the client's 64 MiB Argon2 between the server's steps
            # would flush the server's caches, which a real server never suffers.
            batch = users[:count]
            starts = [start_login(PASSWORD) for _ in batch]  # client crypto: untimed
            init_seconds, inits = [], []
            for user, start in zip(batch, starts, strict=True):
                seconds, init = timed_post(
                    "/login/init", {"username": user.username, "startLoginRequest": b64(start.ke1)}, address(user)
                )
                init_seconds.append(seconds)
                inits.append(init.get_json())
            finish_bodies = []
            for start, body in zip(starts, inits, strict=True):
                ke3 = finish_login(start, unb64(body["loginResponse"]), body["username"], body["serverId"])
                assert ke3 is not None, f"the client refused KE2: {body}"
                finish_bodies.append({"loginId": body["loginId"], "finishLoginRequest": b64(ke3)})
            finish_seconds, pass_auth_tokens = [], []
            for user, finish_body in zip(batch, finish_bodies, strict=True):
                seconds, finish = timed_post("/login/finish", finish_body, address(user))
                finish_seconds.append(seconds)
                assert finish.status_code == 200, finish.get_json()  # a functional check, not a timing one
                pass_auth_tokens.append(finish.get_json()["passAuthToken"])
            clock.advance(30)
            codes = [pyotp.TOTP(user.secret).at(clock()) for user in batch]
            totp_seconds = []
            for user, token, code in zip(batch, pass_auth_tokens, codes, strict=True):
                body = {"passAuthToken": token, "code": code}
                seconds, verified = timed_post("/totp/verify-login", body, address(user))
                totp_seconds.append(seconds)
                assert verified.status_code == 200, verified.get_json()
            # /login/init for a name with no account must cost the same (RFC 9807 section 10.9).
            unknown_seconds = []
            for number, start in enumerate(starts):
                seconds, _ = timed_post(
                    "/login/init",
                    {"username": "no.such.user", "startLoginRequest": b64(start.ke1)},
                    f"198.51.100.{number + 1}",
                )
                unknown_seconds.append(seconds)
            # The baseline in the same stretch of time: this VM's speed drifts by a fifth over
            # tens of seconds, which a baseline measured before or after would not share.
            bare_seconds = bare.batch(count)
            return [
                (init[0], finish[0], totp[0], unknown[0], init[1] + finish[1] + totp[1], *bare_round)
                for init, finish, totp, unknown, bare_round in zip(
                    init_seconds, finish_seconds, totp_seconds, unknown_seconds, bare_seconds, strict=True
                )
            ]

        login_batch(min(warmup, BATCH))
        samples: list[Parts] = []
        while len(samples) < rounds:
            samples += login_batch(min(BATCH, rounds - len(samples)))
        app.extensions["cypher"].store.dispose()
    return samples


class BareLibopaque:
    """The server's libopaque calls alone, on a record made with libopaque: (CreateCredentialResponse,
    UserAuth) seconds per login, in batches shaped like the HTTP ones (every CreateCredentialResponse,
    the clients' Argon2 untimed, every UserAuth), so that both meet the same caches."""

    def __init__(self) -> None:
        self._ids = ids(USERNAME, SERVER_ID)
        client_secret, request = opaque.CreateRegistrationRequest(PASSWORD.encode())
        server_secret, response = opaque.CreateRegistrationResponse(request, pysodium.randombytes(32))
        registration_record, _export_key = opaque.FinalizeRequest(client_secret, response, self._ids)
        self._record = opaque.StoreUserRecord(server_secret, registration_record)

    def batch(self, count: int) -> list[Parts]:
        starts = [opaque.CreateCredentialRequest(PASSWORD.encode()) for _ in range(count)]  # untimed
        responses, response_seconds = [], []
        for ke1, _secret in starts:
            t0 = time.perf_counter()
            responses.append(opaque.CreateCredentialResponse(ke1, self._record, self._ids, b""))
            response_seconds.append(time.perf_counter() - t0)
        ke3s = [
            opaque.RecoverCredentials(ke2, secret, b"", self._ids)[1]  # untimed
            for (ke2, _session_key, _expected), (_ke1, secret) in zip(responses, starts, strict=True)
        ]
        auth_seconds = []
        for (_ke2, _session_key, expected_auth), ke3 in zip(responses, ke3s, strict=True):
            t0 = time.perf_counter()
            opaque.UserAuth(expected_auth, ke3)  # raises ValueError if KE3 is wrong
            auth_seconds.append(time.perf_counter() - t0)
        return list(zip(response_seconds, auth_seconds, strict=True))

    def measure(self, rounds: int) -> list[Parts]:
        samples: list[Parts] = []
        while len(samples) < rounds:
            samples += self.batch(min(BATCH, rounds - len(samples)))
        return samples


def argon2_verify(rounds: int, warmup: int) -> tuple[list[Parts], dict[str, Any]]:
    hasher = argon2.PasswordHasher()
    stored = hasher.hash(PASSWORD)

    def verify() -> Parts:
        t0 = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        return (time.perf_counter() - t0,)

    params = {
        "type": hasher.type.name.lower(),
        "time_cost": hasher.time_cost,
        "memory_cost_kib": hasher.memory_cost,
        "parallelism": hasher.parallelism,
        "hash_len": hasher.hash_len,
        "salt_len": hasher.salt_len,
    }
    return measure(verify, warmup, rounds), params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="measured OPAQUE logins (default 200)")
    parser.add_argument("--argon2-rounds", type=int, default=30, help="measured argon2 verifies (default 30)")
    parser.add_argument("--warmup", type=int, default=10, help="unrecorded OPAQUE warm-up rounds (default 10)")
    args = parser.parse_args()

    bare = BareLibopaque()
    http = complete_login_http(args.rounds, args.warmup, bare)
    after = bare.measure(args.rounds)
    verifies, argon2_params = argon2_verify(args.argon2_rounds, warmup=3)
    measured = [
        ("complete_login", "complete login (OPAQUE + TOTP, HTTP)", [p[0] + p[1] + p[2] for p in http]),
        ("opaque_server_login", "  OPAQUE part (init + finish)", [p[0] + p[1] for p in http]),
        ("opaque_login_init", "    /login/init", [p[0] for p in http]),
        ("opaque_login_finish", "    /login/finish", [p[1] for p in http]),
        ("totp_verify_login", "  /totp/verify-login", [p[2] for p in http]),
        ("opaque_login_init_unknown", "  /login/init, unknown username", [p[3] for p in http]),
        ("complete_login_with_test_client", "  the same three, around the test client", [p[4] for p in http]),
        ("bare_libopaque", "bare libopaque (CCResponse + UserAuth)", [p[5] + p[6] for p in http]),
        ("bare_create_credential_response", "  CreateCredentialResponse", [p[5] for p in http]),
        ("bare_user_auth", "  UserAuth", [p[6] for p in http]),
        ("bare_libopaque_after", "  the same, all measured after the HTTP logins", [sum(p) for p in after]),
        ("argon2_verify", "argon2 PasswordHasher().verify (defaults)", [p[0] for p in verifies]),
    ]
    rows = {key: summary(samples) for key, _label, samples in measured}
    complete = rows["complete_login"]["median_ms"]
    argon2_ratio = rows["argon2_verify"]["median_ms"] / complete
    overhead_ratio = complete / rows["bare_libopaque"]["median_ms"]
    targets = {"argon2_ratio_met": argon2_ratio >= TARGET_ARGON2_RATIO}
    packages = {name: metadata.version(name) for name in ("opaque", "argon2-cffi", "Flask", "SQLAlchemy")}
    machine: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }

    print(
        f"Cypher login cost: {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable), "
        f"Python {machine['python']}, {machine['platform']}"
    )
    print(f"argon2-cffi {packages['argon2-cffi']} defaults: {argon2_params}")
    print(f"\n{'measurement':<44}{'rounds':>7}{'median ms':>11}{'p90 ms':>10}{'min ms':>10}")
    for key, label, _samples in measured:
        r = rows[key]
        print(f"{label:<44}{r['rounds']:>7}{r['median_ms']:>11.3f}{r['p90_ms']:>10.3f}{r['min_ms']:>10.3f}")
    print(
        f"\nargon2 verify / complete login (medians):       {argon2_ratio:8.1f}x   "
        f"target >= {TARGET_ARGON2_RATIO:g}: {'MET' if targets['argon2_ratio_met'] else 'NOT MET'}"
    )
    print(f"complete login / bare libopaque (medians):      {overhead_ratio:8.1f}x")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    ratios = {
        "argon2_verify_over_complete_login": argon2_ratio,
        "complete_login_over_bare_libopaque": overhead_ratio,
        "targets": {"argon2_ratio_at_least": TARGET_ARGON2_RATIO},
        **targets,
    }
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": system_clock().isoformat(timespec="seconds"),
                "machine": machine,
                "warmup": args.warmup,
                "argon2_parameters": argon2_params,
                "results": rows,
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
