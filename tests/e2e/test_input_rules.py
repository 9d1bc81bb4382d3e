"""Input hygiene over HTTP, on every backend: names hold no control or bidi characters and are
unique without regard to case or Unicode form (the 409 names the record that has the name);
label keys and values hold no control characters; environment variable names follow a
pattern and avoid the names that change how programs run; numbers are JSON numbers."""

from __future__ import annotations

import unicodedata

import pytest

CASE = {"criteria": [{"metric": "voltage", "condition": "<=", "threshold": 240}]}
RESOURCES = {
    "/api/devices": {},
    "/api/test-cases": CASE,
    "/api/environments": {},
}
CAFE_COMPOSED = "Caf\u00e9 bench"
CAFE_DECOMPOSED = unicodedata.normalize("NFD", CAFE_COMPOSED)


def assert_error(response, status, code=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "message", "errors"}, body
    if code:
        assert body["code"] == code, body
    return body


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize(
    ("first", "second"),
    [("Meter 1", "meter 1"), ("Meter 1", "METER 1 "), (CAFE_COMPOSED, CAFE_DECOMPOSED)],
    ids=["lower", "upper", "decomposed"],
)
def test_a_name_differing_only_in_case_or_unicode_form_is_taken(client, path, first, second):
    created = client.post(path, json={"name": first, **RESOURCES[path]})
    assert created.status_code == 201, created.get_json()
    existing = created.get_json()
    body = assert_error(client.post(path, json={"name": second, **RESOURCES[path]}), 409)
    assert body["code"] == "already_exists"
    # the answer names the record that has the name, as it spells it, and its id
    assert repr(first) in body["message"] and existing["id"] in body["message"]
    assert existing["id"] in body["errors"]["name"][0]
    other = client.post(path, json={"name": "another one", **RESOURCES[path]}).get_json()
    renamed = client.patch(f"{path}/{other['id']}", json={"name": second})
    assert_error(renamed, 409, "already_exists")
    # a record may change the case of its own name
    own = client.patch(f"{path}/{existing['id']}", json={"name": second.strip().upper()})
    assert own.status_code == 200, own.get_json()


@pytest.mark.parametrize("path", RESOURCES)
def test_names_are_stored_in_nfc(client, path):
    created = client.post(path, json={"name": CAFE_DECOMPOSED, **RESOURCES[path]})
    assert created.status_code == 201
    assert created.get_json()["name"] == CAFE_COMPOSED


BAD_CHARACTERS = {
    "escape": "\x1b[31mred",
    "delete": "meter\x7f",
    "c1": "meter\x85",
    "newline": "meter\n2",
    "rtl_override": "meter\u202efdp.exe",
    "ltr_embedding": "\u202ameter",
    "first_strong_isolate": "meter\u2068x\u2069",
    "lone_surrogate": "meter\udfff",
}


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize("name", BAD_CHARACTERS.values(), ids=BAD_CHARACTERS.keys())
def test_names_with_control_or_bidi_characters_are_refused(client, path, name):
    body = assert_error(client.post(path, json={"name": name, **RESOURCES[path]}), 422)
    assert "name" in body["errors"]


@pytest.mark.parametrize(
    "labels",
    [{"bench\x1b": "A"}, {"bench": "A\u202e"}, {"bench": "line\nbreak"}, {"\udfff": "x"}],
)
def test_labels_with_control_or_bidi_characters_are_refused(client, labels):
    body = assert_error(client.post("/api/devices", json={"name": "m", "labels": labels}), 422)
    # a lone surrogate is refused at the door, which names the key's path ("labels.<key>")
    assert [field for field in body["errors"] if field.split(".")[0] == "labels"], body


def test_a_users_display_name_follows_the_same_rules(client):
    answer = client.post(
        "/auth/users",
        json={
            "email": "eve@lab.example",
            "name": "Eve\u202e",
            "role": "viewer",
            "password": "a-fine-password",
        },
    )
    body = assert_error(answer, 422)
    assert "name" in body["errors"]


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "LD_PRELOAD",
        "LD_ANYTHING",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "HOME",
        "BASH_ENV",
        "IFS",
        "DEVICELAB_SECRET_KEY",
        "1START",
        "with-dash",
        "with space",
        "caf\u00e9",
        "\udfff",
        "A" * 129,
    ],
)
def test_environment_variable_names_that_are_not_plain_or_are_reserved_are_refused(client, name):
    answer = client.post("/api/environments", json={"name": "bench", "variables": {name: "1"}})
    body = assert_error(answer, 422)
    assert [field for field in body["errors"] if field.split(".")[0] == "variables"], body
    created = client.post("/api/environments", json={"name": "bench", "variables": {"ok": "1"}})
    patched = client.patch(
        f"/api/environments/{created.get_json()['id']}", json={"variables": {name: "1"}}
    )
    assert_error(patched, 422)


def test_plain_environment_variable_names_are_kept(client):
    variables = {"TEMP_C": "23", "_private": "x", "path": "lower case is not PATH", "A" * 128: ""}
    created = client.post("/api/environments", json={"name": "bench", "variables": variables})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["variables"] == variables


def test_environment_variable_values_hold_no_control_characters(client):
    answer = client.post("/api/environments", json={"name": "b", "variables": {"X": "a\x1bb"}})
    assert_error(answer, 422)


@pytest.mark.parametrize("threshold", ["5", "5.0", True, None, [5], {"v": 5}])
def test_a_threshold_must_be_a_json_number(client, threshold):
    criteria = [{"metric": "voltage", "condition": "<=", "threshold": threshold}]
    body = assert_error(
        client.post("/api/test-cases", json={"name": "c", "criteria": criteria}), 422
    )
    assert "criteria" in body["errors"]
    created = client.post("/api/test-cases", json={"name": "ok", **CASE})
    patched = client.patch(
        f"/api/test-cases/{created.get_json()['id']}", json={"criteria": criteria}
    )
    assert_error(patched, 422)


@pytest.mark.parametrize("field", ["duration_s", "timeout_s"])
@pytest.mark.parametrize("value", ["60", 60.0, True])
def test_durations_must_be_json_integers(client, field, value):
    answer = client.post("/api/test-cases", json={"name": "c", **CASE, field: value})
    assert field in assert_error(answer, 422)["errors"]


def test_runner_reports_carry_json_numbers(client, lab, report):
    run = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][0]["id"]],
        },
    ).get_json()
    assert report(run["id"], "started", {"runner": "r1"}).status_code == 200
    assert_error(report(run["id"], "progress", {"progress": "0.5"}), 422)
    result = {
        "test_case_id": lab["cases"][0]["id"],
        "device_id": lab["devices"][0]["id"],
        "measurements": [{"metric": "voltage", "value": "230"}],
    }
    assert_error(report(run["id"], "result", result), 422)
    assert report(run["id"], "progress", {"progress": 0.5}).status_code == 200
