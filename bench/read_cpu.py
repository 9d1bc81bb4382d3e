"""`python -m bench.read_cpu`: CPU time of this process per `GET /api/devices?limit=50`, the app
in-process (Flask's test client, no gunicorn, one thread) on a PostgreSQL database of its own
with 12,000 devices, signed in as an admin; then the same request with the ETag of its answer
(304). CPU time moves much less than throughput on a machine others load, so two checkouts can
be compared on it, alternately: `python -m bench.read_cpu --checkout <other checkout>` runs this
script on the other checkout's code (`git worktree add /tmp/before <commit>`), without it on
this one's. The test client's own work is in both figures alike."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from dependency_injector import providers

from adapters.auth.passwords import cheap_password_hasher
from adapters.persistence.schema import upgrade_auth_schema, upgrade_schema
from application.auth.users import CreateUserRequest
from bench import bulk
from bench.service import START_DEVICES
from bench.stack import Databases
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_app, create_container

PAGE = "/api/devices?limit=50"
REQUESTS, SAMPLES = 1000, 5


def _cpu_ms_per_request(client, headers: dict[str, str], status: int) -> list[float]:
    assert client.get(PAGE, headers=headers).status_code == status
    samples = []
    for _ in range(SAMPLES):
        began = time.process_time()
        for _ in range(REQUESTS):
            client.get(PAGE, headers=headers)
        samples.append((time.process_time() - began) / REQUESTS * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.read_cpu", description=__doc__)
    parser.add_argument("--checkout", type=Path, help="measure this checkout's code instead")
    args = parser.parse_args()
    if args.checkout is not None:
        # run as a script: its own folder first on the path, then the checkout's packages
        env = {**os.environ, "PYTHONPATH": str(args.checkout.resolve())}
        subprocess.run([sys.executable, __file__], env=env, check=True)
        return
    logging.disable(logging.WARNING)
    databases = Databases()
    try:
        url = databases.create("cpu")
        upgrade_schema(url)
        upgrade_auth_schema(url)
        bulk.load_catalog(url, START_DEVICES)
        settings = {
            "DEVICELAB_DATABASE_URL": url,
            "DEVICELAB_SECRET_KEY": "bench-read-cpu-secret-0123456789-abcdef",
            "DEVICELAB_LOG_LEVEL": "ERROR",
        }
        container = create_container(Settings.from_env(settings))
        container.password_hasher.override(providers.Object(cheap_password_hasher()))
        app = create_app(container)
        try:
            request = CreateUserRequest("bench@lab.example", "bench", "admin", "bench-password")
            container.create_user()(request)
            client = app.test_client()
            login = {"email": request.email, "password": request.password}
            token = client.post("/auth/login", json=login).get_json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            for _ in range(300):  # warm-up: pools, caches
                client.get(PAGE, headers=auth)
            full = _cpu_ms_per_request(client, auth, 200)
            line = (
                f"200: min {min(full):.3f} ms CPU/request ({', '.join(f'{s:.3f}' for s in full)})"
            )
            etag = client.get(PAGE, headers=auth).headers.get("ETag")
            if etag:  # a checkout from before the ETags has none
                again = _cpu_ms_per_request(client, {**auth, "If-None-Match": etag}, 304)
                line += f"; 304: min {min(again):.3f} ms"
            print(line, flush=True)
        finally:
            dispose_engines(container)
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
