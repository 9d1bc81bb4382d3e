"""The kept-answer store of the device list (adapters/http/answer_cache.py): bounded by
entries (least recently used out first) and by an answer's size; 0 entries keeps nothing."""

from __future__ import annotations

from adapters.http.answer_cache import AnswerCache


def test_the_least_recently_used_answer_goes_first():
    cache = AnswerCache(entries=2)
    cache.put("a", b"A")
    cache.put("b", b"B")
    assert cache.get("a") == b"A"  # now b is the least recently used
    cache.put("c", b"C")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"A", None, b"C")
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (3, 1)


def test_an_answer_kept_again_replaces_the_old_bytes():
    cache = AnswerCache(entries=2)
    cache.put("a", b"old")
    cache.put("a", b"new")
    assert cache.get("a") == b"new"
    assert len(cache) == 1


def test_too_large_answers_and_a_cache_of_none_keep_nothing():
    small = AnswerCache(entries=4, largest_bytes=3)
    small.put("a", b"four")
    assert small.get("a") is None
    off = AnswerCache(entries=0)
    off.put("a", b"A")
    assert off.get("a") is None
    assert len(off) == 0
