"""The rules of a run's log (numbering, the one truncation marker) and of artifact names and
types, and the artifact use cases on the in-memory twins (budget, retries, purge)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.persistence.run_logs_in_memory import InMemoryArtifactStorage
from application.errors import TooLarge
from application.use_cases.artifacts import ArtifactUpload, PurgeArtifacts, StoreArtifact
from domain.artifacts import artifact_name, content_type
from domain.errors import InvalidValue
from domain.run_logs import (
    LogLevel,
    LogLimits,
    LogLine,
    LogTotals,
    append_lines,
    describe_age,
    purge_log,
)

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def lines(*messages: str) -> list[LogLine]:
    return [LogLine(T0, LogLevel.INFO, m) for m in messages]


@given(
    batches=st.lists(st.lists(st.text(max_size=20), max_size=8), max_size=8),
    max_lines=st.integers(1, 20),
    max_bytes=st.integers(1, 200),
)
def test_a_log_is_numbered_without_gaps_and_cut_at_most_once(batches, max_lines, max_bytes):
    limits = LogLimits(max_lines, max_bytes)
    totals, stored, sent = LogTotals(), [], 0
    for batch in batches:
        appended = append_lines(totals, lines(*batch), limits, T0)
        stored += appended.stored
        sent += len(batch)
        totals = appended.totals
    assert [line.seq for line in stored] == list(range(1, len(stored) + 1))
    markers = [line for line in stored if "log truncated" in line.message]
    assert len(markers) == (1 if totals.truncated else 0)
    if totals.truncated:
        assert stored[-1] is markers[0]
        kept = stored[:-1]
        assert len(kept) <= max_lines and sum(line.size for line in kept) <= max_bytes
    else:
        assert len(stored) == sent


def test_lines_after_the_cut_are_dropped_and_counted():
    limits = LogLimits(2, 1000)
    cut = append_lines(LogTotals(), lines("a", "b", "c", "d"), limits, T0)
    assert [line.message for line in cut.stored[:2]] == ["a", "b"]
    assert cut.dropped == 2 and cut.totals.truncated and cut.totals.lines == 3
    after = append_lines(cut.totals, lines("e"), limits, T0)
    assert after.stored == () and after.dropped == 1


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "a\\b", "..", ".", "..x", "C:x", "a\x00b", "\u202e"]
)
def test_names_that_are_paths_or_hide_characters_are_refused(name):
    with pytest.raises(InvalidValue):
        artifact_name(name)


def test_plain_names_and_media_types_are_kept():
    assert artifact_name(" voltage log.csv ") == "voltage log.csv"
    assert artifact_name("Messprotokoll-ü.txt") == "Messprotokoll-ü.txt"
    assert content_type("text/csv; charset=utf-8") == "text/csv; charset=utf-8"
    assert content_type(None) == "application/octet-stream"
    with pytest.raises(InvalidValue):
        content_type("text/html\r\nSet-Cookie: x=1")


def _run(lab, n=1):
    device = lab.add_device(f"meter-{n}")
    case = lab.add_test_case(f"voltage {n}")
    return lab.start([device], [case], lab.add_environment(f"bench {n}"))


def _store_artifact(lab, storage, max_bytes=100, per_run=150):
    return StoreArtifact(lab.new_uow, storage, lab.clock, lab.ids, max_bytes, per_run)


def test_an_artifact_over_its_allowance_leaves_no_bytes_and_no_record(lab):
    storage = InMemoryArtifactStorage()
    run, store = _run(lab), _store_artifact(lab, storage)
    store(run.id, ArtifactUpload("a.bin"), [b"x" * 60, b"x" * 40])
    with pytest.raises(TooLarge, match="run"):  # 100 + 51 > 150
        store(run.id, ArtifactUpload("b.bin"), [b"y" * 51])
    with pytest.raises(TooLarge, match="an artifact"):
        store(_run(lab, 2).id, ArtifactUpload("c.bin"), [b"z" * 101])
    assert len(storage.blobs) == 1
    with lab.new_uow() as uow:
        assert [a.name for a in uow.artifacts.of_run(run.id)] == ["a.bin"]


def test_a_retried_upload_keeps_the_first_copy_and_its_bytes_only(lab):
    storage = InMemoryArtifactStorage()
    run, store = _run(lab), _store_artifact(lab, storage)
    first = store(run.id, ArtifactUpload("a.bin"), [b"same"])
    again = store(run.id, ArtifactUpload("a.bin"), [b"sa", b"me"])
    assert first.created and not again.created and again.artifact == first.artifact
    assert list(storage.blobs) == [first.artifact.id]


def test_purge_removes_old_records_and_their_bytes_and_says_which(lab):
    storage = InMemoryArtifactStorage()
    run, store = _run(lab), _store_artifact(lab, storage)
    old = store(run.id, ArtifactUpload("old.bin"), [b"1"]).artifact
    lab.clock.advance(91 * 24 * 3600)
    new = store(run.id, ArtifactUpload("new.bin"), [b"2"]).artifact
    removed = PurgeArtifacts(lab.new_uow, storage, lab.clock)(timedelta(days=90))
    assert removed == [old]
    assert list(storage.blobs) == [new.id]
    with pytest.raises(InvalidValue):
        PurgeArtifacts(lab.new_uow, storage, lab.clock)(timedelta(0))


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (90 * 86400, "90 days"),
        (86400, "1 day"),
        (14 * 86400, "14 days"),
        (12 * 3600, "12 hours"),
        (90 * 60, "90 minutes"),
        (45, "45 seconds"),
        (1, "1 second"),
    ],
)
def test_an_age_is_said_in_the_largest_whole_unit(seconds, said):
    assert describe_age(timedelta(seconds=seconds)) == said


def test_a_purged_log_is_one_warning_after_the_last_line_and_stays_cut_if_it_was():
    now = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
    purged = purge_log(LogTotals(100_001, 5_000_000, True), 100_001, now, timedelta(days=90))
    marker = purged.marker
    assert (marker.seq, marker.level, marker.at) == (100_002, LogLevel.WARNING, now)
    assert marker.message == (
        "[devicelab] log purged: devicelab removed 100001 lines on 2026-12-01 because the run "
        "finished more than 90 days ago"
    )
    assert purged.totals == LogTotals(100_002, marker.size, True, purged_at=now)
