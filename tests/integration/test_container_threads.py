"""The container's engines are made once, however many threads ask for them first.

gunicorn's threads resolve the container's providers lazily, at the first requests a fresh
worker serves, and those come in together. A plain dependency-injector Singleton is not
thread-safe: two threads could each build an engine — two connection pools, the second one
beyond the configured pool size (connections PostgreSQL counts against `max_connections`)
and never disposed. Found while stress-testing parallel starts (issue 11)."""

from __future__ import annotations

from entrypoints.settings import Settings
from entrypoints.wsgi import create_container
from tests.support.concurrency import fire_together

THREADS = 16
FRESH_CONTAINERS = 30


def test_threads_resolving_a_fresh_container_together_share_one_engine_each(tmp_path):
    settings = Settings.from_env(
        {
            "DEVICELAB_DATA_DIR": str(tmp_path),
            "DEVICELAB_SECRET_KEY": "container-threads-secret-0123456789-abcdef",
            "DEVICELAB_DATABASE_URL": f"sqlite:///{tmp_path / 'lab.db'}",
            "DEVICELAB_AUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'auth.db'}",
        }
    )
    for _ in range(FRESH_CONTAINERS):
        container = create_container(settings)

        def resolve(container=container):
            return (
                container.engine(),
                container.read_engine(),
                container.auth_engine(),
                container.auth_read_engine(),
                container.session_factory(),
                container.auth_session_factory(),
            )

        outcomes = fire_together([resolve for _ in range(THREADS)])
        assert not [o for o in outcomes if isinstance(o, Exception)]
        for position in range(6):
            assert len({id(o[position]) for o in outcomes}) == 1, position
        for engine in outcomes[0][:4]:
            engine.dispose()
