"""The API's workers move what loading the app made out of the collector's way (gc.freeze),
after freeing what loading left as garbage."""

from __future__ import annotations

import gc
import weakref

import pytest

from entrypoints.gunicorn_worker import (
    FreezesTheLoadedApp,
    JsonErrorsGeventWorker,
    JsonErrorsWorker,
)
from entrypoints.split_workers import RestWorker, StreamWorker


class _Node:
    def __init__(self) -> None:
        self.partner: _Node | None = None


class _Loading:
    """Stands for gunicorn's load_wsgi: the app it makes, and garbage in a cycle."""

    def load_wsgi(self) -> None:
        self.wsgi = [_Node() for _ in range(100)]
        left_over, other = _Node(), _Node()
        left_over.partner, other.partner = other, left_over
        self.left_over = weakref.ref(left_over)


class _Worker(FreezesTheLoadedApp, _Loading):
    pass


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()


def test_what_loading_made_is_frozen_and_its_garbage_freed(unfrozen: None) -> None:
    frozen_before = gc.get_freeze_count()
    worker = _Worker()
    worker.load_wsgi()
    assert worker.left_over() is None  # collected before the freeze, not kept for good
    assert gc.get_freeze_count() >= frozen_before + len(worker.wsgi)
    walked = {id(o) for o in gc.get_objects()}  # what the collector's generations hold
    assert not any(id(node) in walked for node in worker.wsgi)


@pytest.mark.parametrize(
    "worker_class", [JsonErrorsGeventWorker, JsonErrorsWorker, RestWorker, StreamWorker]
)
def test_every_worker_devicelab_serves_with_freezes_after_loading(worker_class: type) -> None:
    order = worker_class.__mro__
    loads = [c for c in order if "load_wsgi" in vars(c)]
    assert FreezesTheLoadedApp in loads
    # gunicorn's own load_wsgi runs inside the freezing one, so the app exists when it freezes
    assert loads.index(FreezesTheLoadedApp) < max(
        loads.index(c) for c in loads if c.__module__.startswith("gunicorn")
    )
