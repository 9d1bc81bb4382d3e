"""The queue over HTTP: the worker's estimated starts on runs and queue entries, the `queue`
event on the live stream when a run enters or leaves the queue or estimates move, and the
queue numbers on the dashboard."""

from __future__ import annotations

from datetime import datetime

from tests.e2e.test_live_and_stats import parse_events


def _start(client, lab, device_index: int) -> dict:
    response = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],  # declares 10 s
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][device_index]["id"]],
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _queue_events(client, after: int = 0) -> list[tuple[int, dict]]:
    text = client.get(f"/api/events?after={after}&max_seconds=1").get_data(as_text=True)
    return [(i, data) for i, name, data in parse_events(text) if name == "queue"]


def test_estimates_and_the_queue_event(client, lab, container):
    busy = _start(client, lab, 0)
    assert _queue_events(client) == []  # booked at once: the queue did not change
    waiting = _start(client, lab, 0)
    assert waiting["status"] == "waiting" and waiting["estimated_start_at"] is None

    (event_id, entered), *_ = _queue_events(client)
    assert entered == {
        "length": 1,
        "items": [{"kind": "run", "id": waiting["id"], "position": 1, "estimated_start_at": None}],
    }

    # what the worker does after its scheduling pass
    assert container.estimate_queue()().written
    (_, estimated), *_ = _queue_events(client, event_id)
    at = estimated["items"][0]["estimated_start_at"]
    assert at is not None
    # the busy run is queued for a runner: its 10 s case from now
    assert datetime.fromisoformat(at) > datetime.fromisoformat(busy["created_at"])
    assert client.get(f"/api/test-runs/{waiting['id']}").get_json()["estimated_start_at"] == at
    (entry,) = client.get("/api/queue").get_json()["items"]
    assert entry["estimated_start_at"] == at

    stats = client.get("/api/stats").get_json()["queue"]
    assert stats["length"] == 1
    assert stats["oldest_waiting_since"] is not None and stats["longest_wait_s"] >= 0

    last_id = max(i for i, _ in _queue_events(client))
    client.post(f"/api/test-runs/{waiting['id']}/cancel", json={})
    (_, left), *_ = _queue_events(client, last_id)
    assert left == {"length": 0, "items": []}
    assert client.get("/api/stats").get_json()["queue"] == {
        "length": 0,
        "longest_wait_s": None,
        "oldest_waiting_since": None,
    }
