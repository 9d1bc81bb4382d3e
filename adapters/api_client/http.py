"""HTTP to a devicelab server with the standard library: JSON calls, file downloads, and the
live event stream (Server-Sent Events) read line by line.

Every failure is an ApiClientError with a message a person can act on: the server's own error
message and code for a 4xx/5xx answer, or what could not be reached."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

USER_AGENT = "devicelab-cli"


class ApiClientError(Exception):
    """The server refused or failed a call (status > 0), or could not be reached (status 0)."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class ServerEvent:
    name: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None


def query_string(query: dict[str, Any] | None) -> str:
    pairs = [
        (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()
    ]
    pairs = [(k, v) for k, v in pairs if v not in ("", "None")]
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def quote(part: str) -> str:
    """An id as one path segment, whatever it contains."""
    return urllib.parse.quote(part, safe="")


class DevicelabClient:
    def __init__(self, base_url: str, token: str, timeout_s: float = 30) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ApiClientError(f"the server URL must be http(s)://host[:port]: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    # -- plain calls ---------------------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        accept: str = "application/json",
        timeout_s: float | None = None,
        headers: dict[str, str] | None = None,
    ):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", accept)
        request.add_header("User-Agent", USER_AGENT)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            return urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s)
        except urllib.error.HTTPError as error:
            raise _refusal(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiClientError(f"cannot reach {self.base_url}: {reason}") from None

    def call(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        with self._open(method, path + query_string(query), body) as response:
            raw = response.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ApiClientError(
                f"{self.base_url}{path} did not answer JSON: is it a devicelab server?"
            ) from None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body)

    def download(self, path: str, accept: str) -> bytes:
        with self._open("GET", path, accept=accept) as response:
            return response.read()

    def get_all(self, path: str, limit: int | None = None, **query: Any) -> list[dict]:
        """Every item of a cursor-paginated list (at most `limit`)."""
        items: list[dict] = []
        cursor = None
        while True:
            page = self.get(path, **query, limit=200, cursor=cursor)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items

    # -- the live event stream ------------------------------------------------------------

    def events(
        self, after: str | None = None, max_seconds: int = 300, read_timeout_s: float = 40
    ) -> Iterator[ServerEvent]:
        """The /api/events stream from `after` (an event id), event by event. The first event
        yielded is `open` (the server's greeting): from then on no change is missed; the
        server's keepalives come as `comment` events. A read
        that waits longer than `read_timeout_s` (the server sends a keepalive at least every
        15 s) ends the stream with ApiClientError."""
        headers = {"Last-Event-ID": after} if after else {}
        response = self._open(
            "GET",
            f"/api/events?max_seconds={max_seconds}",
            accept="text/event-stream",
            timeout_s=read_timeout_s,
            headers=headers,
        )
        with response:
            yield from _parse_events(response)


def _parse_events(response) -> Iterator[ServerEvent]:
    name, data, event_id, greeted = "", [], None, False
    while True:
        try:
            raw = response.readline()
        except (TimeoutError, OSError) as error:
            raise ApiClientError(f"the event stream went silent: {error}") from None
        if not raw:
            return  # the server ended the stream (max_seconds): reconnect
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if not greeted:
                greeted = True
                yield ServerEvent("open", "", None)
            if data or name:
                yield ServerEvent(name or "message", "\n".join(data), event_id)
            name, data = "", []
            continue
        if line.startswith(":"):
            # a keepalive or remark: handed on, so a reader can look at its clock
            yield ServerEvent("comment", line[1:].strip(), None)
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


def _refusal(error: urllib.error.HTTPError) -> ApiClientError:
    try:
        body = json.loads(error.read() or b"null")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]
        errors = body.get("errors")
        if errors:
            message += f" {json.dumps(errors, separators=(',', ':'))}"
        return ApiClientError(message, error.code, str(body.get("code", "")))
    return ApiClientError(f"HTTP {error.code} {error.reason}", error.code)
