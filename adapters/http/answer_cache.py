"""The device list's encoded answers, kept per worker process and keyed by the change log's
position, so that the many screens asking for the same page between two changes get bytes
already encoded instead of a query, its rows and their JSON each.

The position (`ReadLabVersion`) changes with every committed change of a device, run, hold,
test case or environment (list_etags.py tags the answers with it), so a kept answer is found
only while the lab is as it was when the answer was read: nothing is ever served stale, and
nothing needs to be told to forget. An answer read after its position may be newer than the
position (see ReadLabVersion), never older. The key is the view and its query arguments as
parsed, not the caller: the device list answers every reader the same. Whoever asks still
passes the token check first (security.py), so a logged-out session or a revoked token gets
401 from a kept answer as from a fresh one; each answer still gets its caller's own ETag.

`DEVICELAB_LIST_CACHE_ENTRIES` answers at most (the least recently used goes first), none
larger than LARGEST_ANSWER_BYTES; 0 turns it off."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

from flask import Flask, Response, current_app, request

ANSWER_CACHE = "devicelab.answer_cache"
LARGEST_ANSWER_BYTES = 2 * 1024 * 1024


class AnswerCache:
    """At most `entries` encoded answers, least recently used first out; safe to share
    between a worker's threads or greenlets."""

    def __init__(self, entries: int, largest_bytes: int = LARGEST_ANSWER_BYTES) -> None:
        self.entries, self.largest_bytes = entries, largest_bytes
        self._kept: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._kept.get(key)
            if body is None:
                self.misses += 1
                return None
            self._kept.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        if self.entries <= 0 or len(body) > self.largest_bytes:
            return
        with self._lock:
            self._kept[key] = body
            self._kept.move_to_end(key)
            while len(self._kept) > self.entries:
                self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)


def install_answer_cache(app: Flask, entries: int) -> AnswerCache:
    cache = AnswerCache(entries)
    app.extensions[ANSWER_CACHE] = cache
    return cache


def _key(lab_version: str, args: Mapping[str, Any]) -> Hashable:
    return (lab_version, request.endpoint, tuple(sorted((n, str(v)) for n, v in args.items())))


def kept_answer(lab_version: str, args: Mapping[str, Any]) -> Response | None:
    """This request's answer as kept at `lab_version`, a fresh Response of its bytes; or None."""
    cache: AnswerCache | None = current_app.extensions.get(ANSWER_CACHE)
    body = None if cache is None else cache.get(_key(lab_version, args))
    if body is None:
        return None
    return current_app.response_class(body, mimetype="application/json")


def keep_answer(lab_version: str, args: Mapping[str, Any], answer: Response) -> None:
    cache: AnswerCache | None = current_app.extensions.get(ANSWER_CACHE)
    if cache is not None:  # it keeps nothing when it may keep no entries
        cache.put(_key(lab_version, args), answer.get_data())
