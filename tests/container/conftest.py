"""Fixtures of the container test: the engine, the images and the running stack, each made once
for the module and gone after it (so `make test` runs the rest of the suite without them);
the time of every phase is printed at the end of the session.

Without a container engine the test skips, except with CI=true, where it fails: `make
deploy-test` (and `make test`) install Debian's docker.io first."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from tests.container import images
from tests.container.engine import Daemon, EngineMissing, Phases, compose_binary
from tests.container.stack import Stack

IMAGE_TAG = "devicelab:containertest"
_phases = Phases()
_failures: list[str] = []  # the tests that failed, so that teardown shows the services' logs


def pytest_terminal_summary(terminalreporter) -> None:
    if _phases.times:
        terminalreporter.section("container test: time of each phase")
        for line in _phases.report():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def phases() -> Phases:
    return _phases


@pytest.fixture(scope="module")
def engine(phases) -> Iterator[Daemon]:
    try:
        with phases.phase("engine (dockerd) ready"):
            compose_binary()
            daemon = Daemon.ensure()
    except EngineMissing as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no container engine: {missing}", pytrace=False)
        pytest.skip(str(missing))
    yield daemon
    if daemon.started_here:
        with phases.phase("engine stopped (it was started by the test)"):
            daemon.stop()


@pytest.fixture(scope="module")
def built(engine, phases) -> dict[str, str]:
    with phases.phase("base image (debootstrap, cached by content key)"):
        base = images.base_image()
    with phases.phase("stand-in images (cached by content key)"):
        python = images.standin_image("python", base)
        node = images.standin_image("node", base)
        infra = images.standin_image("infra", base)
    with phases.phase("devicelab image (production Dockerfile)"):
        image = images.devicelab_image(IMAGE_TAG, python, node)
    return {"image": image, "infra": infra, "python": python}


@pytest.fixture(scope="module")
def stack(built, phases, tmp_path_factory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("compose"), built["image"], built["infra"])
    stack.down()  # whatever an interrupted run left behind
    failed = True
    try:
        with phases.phase("stack up (healthy) and first user"):
            stack.up()
            stack.create_admin()
            stack.login()
        failed = False
        yield stack
    finally:
        if failed or _failures:
            print("\n--- compose logs (tail) ---\n" + stack.logs(80), file=sys.stderr)
        with phases.phase("teardown (containers, networks, volumes)"):
            stack.down()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if outcome.get_result().failed:
        _failures.append(item.nodeid)


@pytest.fixture(autouse=True)
def _timed(request, phases) -> Iterator[None]:
    """Each test is a phase of its own."""
    with phases.phase(request.node.name.removeprefix("test_").replace("_", " ")):
        yield
