"""The read path's ceiling: a bare Flask app answering a JSON page of 50 device-shaped objects,
served by the same gunicorn settings as devicelab (`devicelab serve`). No database, no auth:
what Flask, gunicorn and JSON encoding cost on this machine.

    gunicorn --worker-class gthread --workers 2 --threads 16 'bench.bare_app:create_app()'"""

from __future__ import annotations

from flask import Flask, jsonify


def _device(n: int) -> dict:
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "name": f"meter-{n:05d}",
        "model": "EM-340",
        "serial": f"SN{n:08d}",
        "firmware_version": "2.4.1",
        "location": "bench A",
        "labels": {"phase": "L1", "bench": "A"},
        "status": "available",
        "held_by": None,
        "last_seen_at": "2026-11-27T00:00:00+00:00",
        "created_at": "2026-11-27T00:00:00+00:00",
        "updated_at": "2026-11-27T00:00:00+00:00",
    }


def create_app() -> Flask:
    app = Flask("bare")
    app.json.sort_keys = False

    @app.get("/api/devices")
    def devices():
        # built per request, as devicelab builds its page per request
        return jsonify({"items": [_device(n) for n in range(50)], "next_cursor": "x" * 60})

    return app
