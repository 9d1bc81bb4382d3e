"""An unexpected exception (a bug) answers 500 in the one error shape with a `request_id`,
and the server log names the same request id beside the method, the path and the full
traceback — so one 500 seen by a client can be found among thousands of requests."""

from __future__ import annotations

import logging

import pytest
from dependency_injector import providers


@pytest.fixture
def backend():
    return None  # in memory


class Broken:
    """A use case with a bug, however it is called (the device list reads through `read`)."""

    def __call__(self, *args, **kwargs):
        raise RuntimeError("a bug deep in a use case")

    read = __call__


def test_a_500_carries_the_request_id_its_log_line_names(app, client, container, caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production, not raise
    container.list_devices.override(providers.Object(Broken()))
    with caplog.at_level(logging.ERROR, logger="adapters.http.errors"):
        response = client.get("/api/devices?limit=5")
    container.list_devices.reset_override()
    assert response.status_code == 500
    body = response.get_json()
    assert body["code"] == "internal_error" and body["errors"] == {}
    request_id = body["request_id"]
    assert len(request_id) == 16 and request_id in body["message"]
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert "GET /api/devices" in record.getMessage()
    assert record.exc_info and "a bug deep in a use case" in str(record.exc_info[1])
    # another 500 is another request
    container.list_devices.override(providers.Object(Broken()))
    again = client.get("/api/devices").get_json()
    container.list_devices.reset_override()
    assert again["request_id"] != request_id
