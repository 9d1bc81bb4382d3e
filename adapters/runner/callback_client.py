"""devicelab's runner callback API over HTTP (standard library only).

Answers the runner can act on come back at once (200, 409, 401/403, 404, 422). Answers that may
change if asked again (5xx, 408, 429, no connection, a timeout) are retried with exponential
backoff and jitter, honouring Retry-After, until the caller's `give_up_at`; then the last of
them is returned as UNAVAILABLE. Redirects are not followed: a callback URL that redirects is a
configuration error and gets REJECTED."""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from application.ports import Clock
from application.runner import Callback, CallbackReply, CallbackStatus, RunnerLogLine
from domain.test_runs import Observation, ResultReport

log = logging.getLogger(__name__)

_RETRYABLE = {408, 425, 429}
_CONCURRENT_UPDATE = "concurrent_update"
_RUN_CLAIMED = "run_claimed"


def _observation_json(observation: Observation) -> dict[str, Any]:
    data: dict[str, Any] = {
        "metric": observation.metric,
        "value": observation.value,
        "unit": observation.unit,
    }
    if observation.samples:
        data["samples"] = [[t, v] for t, v in observation.samples]
    return data


def result_json(report: ResultReport) -> dict[str, Any]:
    return {
        "test_case_id": report.test_case_id,
        "device_id": report.device_id,
        "measurements": [_observation_json(o) for o in report.observations],
        "message": report.message[:5000],
        "error": report.error,
        "started_at": report.started_at.isoformat() if report.started_at else None,
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
    }


def status_of(http_status: int, code: str = "") -> CallbackStatus:
    if 200 <= http_status < 300:
        return CallbackStatus.ACCEPTED
    if http_status == 409 and code == _CONCURRENT_UPDATE:
        return CallbackStatus.UNAVAILABLE  # someone changed the run meanwhile: ask again
    if http_status == 409 and code == _RUN_CLAIMED:
        return CallbackStatus.CLAIMED
    if http_status == 409:
        return CallbackStatus.FINISHED
    if http_status in (401, 403):
        return CallbackStatus.UNAUTHORIZED
    if http_status == 404:
        return CallbackStatus.UNKNOWN_RUN
    if http_status in _RETRYABLE or http_status >= 500:
        return CallbackStatus.UNAVAILABLE
    return CallbackStatus.REJECTED


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpCallbackClient:
    def __init__(
        self,
        clock: Clock,
        request_timeout_s: float = 10.0,
        first_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        wait: Callable[[float], bool] | None = None,
        user_agent: str = "devicelab-runner",
        rng: random.Random | None = None,
        about: Mapping[str, Any] | None = None,
    ) -> None:
        """`wait(seconds)` pauses between attempts and returns True when the runner is
        stopping (retries end then); by default it only sleeps. `about`: what the runner
        says about itself in `started` and `progress` (host, version, executors) for the
        server's runner registry."""
        self.about = dict(about or {})
        self.clock = clock
        self.request_timeout_s = request_timeout_s
        self.first_backoff_s, self.max_backoff_s = first_backoff_s, max_backoff_s
        self.wait = wait or threading.Event().wait
        self.user_agent = user_agent
        self.rng = rng or random.Random()
        self._opener = urllib.request.build_opener(_NoRedirects())

    def started(self, callback: Callback, runner: str, give_up_at: datetime) -> CallbackReply:
        body = {**self.about, "runner": runner[:200]}
        return self._post(callback, "started", body, give_up_at)

    def released(self, callback: Callback, runner: str, give_up_at: datetime) -> CallbackReply:
        return self._post(callback, "released", {"runner": runner[:200]}, give_up_at)

    def progress(
        self,
        callback: Callback,
        progress: float,
        message: str,
        partial_results: Sequence[ResultReport],
        give_up_at: datetime,
        runner: str = "",
    ) -> CallbackReply:
        body = {
            **self.about,
            "runner": runner[:200],
            "progress": min(1.0, max(0.0, progress)),
            "message": message[:1000],
            "results": [result_json(r) for r in partial_results],
        }
        return self._post(callback, "progress", body, give_up_at)

    def result(
        self, callback: Callback, results: Sequence[ResultReport], give_up_at: datetime
    ) -> CallbackReply:
        body = {"results": [result_json(r) for r in results]}
        return self._post(callback, "result", body, give_up_at)

    def failed(self, callback: Callback, reason: str, give_up_at: datetime) -> CallbackReply:
        return self._post(callback, "failed", {"reason": reason[:2000]}, give_up_at)

    def logs(
        self, callback: Callback, lines: Sequence[RunnerLogLine], give_up_at: datetime
    ) -> CallbackReply:
        body = {
            "lines": [
                {
                    "at": line.at.isoformat(),
                    "level": line.level,
                    "message": line.message,
                    "device_id": line.device_id,
                    "test_case_id": line.test_case_id,
                }
                for line in lines
            ]
        }
        return self._post(callback, "logs", body, give_up_at)

    def upload_artifact(
        self,
        callback: Callback,
        path: str,
        name: str,
        content_type: str,
        device_id: str | None,
        test_case_id: str | None,
        give_up_at: datetime,
    ) -> CallbackReply:
        """The file streamed from disk (opened again for each attempt), never read whole."""
        query = {"name": name, "content_type": content_type}
        query.update(
            {k: v for k, v in (("device_id", device_id), ("test_case_id", test_case_id)) if v}
        )
        size = os.stat(path).st_size
        report = "artifacts?" + urllib.parse.urlencode(query)
        return self._post(
            callback,
            report,
            None,
            give_up_at,
            body=lambda: open(path, "rb"),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )

    # -- one report, retried --------------------------------------------------------------------

    def _post(
        self,
        callback: Callback,
        report: str,
        json_body: dict[str, Any] | None,
        give_up_at: datetime,
        body: Callable[[], BinaryIO] | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallbackReply:
        url = f"{callback.base_url}/{report}"
        if json_body is not None:
            data = json.dumps(json_body, allow_nan=False).encode()
            opened: Callable[[], bytes | BinaryIO] = lambda: data  # noqa: E731
            headers = {"Content-Type": "application/json"}
        else:
            assert body is not None and headers is not None
            opened = body
        backoff = self.first_backoff_s
        attempt = 0
        while True:
            attempt += 1
            reply, retry_after = self._attempt(url, opened, headers, callback.token)
            if reply.status is not CallbackStatus.UNAVAILABLE:
                return reply
            pause = max(backoff * self.rng.uniform(0.5, 1.0), retry_after or 0.0)
            if self.clock.now() + timedelta(seconds=pause) > give_up_at:
                if attempt > 1:
                    log.warning("%s: giving up after %d attempts: %s", url, attempt, reply.message)
                return reply
            log.info("%s: %s; retrying in %.1f s", url, reply.message, pause)
            if self.wait(pause):
                return reply
            backoff = min(backoff * 2, self.max_backoff_s)

    def _attempt(
        self,
        url: str,
        opened: Callable[[], bytes | BinaryIO],
        content_headers: dict[str, str],
        token: str,
    ) -> tuple[CallbackReply, float | None]:
        try:
            data = opened()
        except OSError as error:  # the file to upload is gone: asking again will not help
            return CallbackReply(CallbackStatus.REJECTED, None, "", f"cannot read: {error}"), None
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={
                **content_headers,
                "Accept": "application/json",
                "Authorization": f"Bearer {token}",
                "User-Agent": self.user_agent,
            },
        )
        try:
            with self._opener.open(request, timeout=self.request_timeout_s) as response:
                truncated = _says_truncated(response.read())
                reply = CallbackReply(
                    status_of(response.status), response.status, log_truncated=truncated
                )
                return reply, None
        except urllib.error.HTTPError as error:
            with error:
                code, message, body_retry_after, reason = _error_body(error.read())
            retry_after = _seconds(error.headers.get("Retry-After"))
            status = status_of(error.code, code)
            # a claimed run is not retried here: the caller decides whether to wait for it
            claim_lapses_in = retry_after if retry_after is not None else body_retry_after
            return CallbackReply(
                status,
                error.code,
                code,
                message or str(error.reason),
                claim_lapses_in if status is CallbackStatus.CLAIMED else None,
                reason,
            ), retry_after
        except (OSError, http.client.HTTPException, ValueError) as error:
            # no connection, a timeout, a broken answer: worth another try
            reason = getattr(error, "reason", error)
            return CallbackReply(CallbackStatus.UNAVAILABLE, None, "", f"no answer: {reason}"), None
        finally:
            if not isinstance(data, bytes):
                data.close()


def _says_truncated(raw: bytes) -> bool:
    """A logs answer's `truncated` (the run's log is full); False for any other answer."""
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("truncated") is True


def _error_body(raw: bytes) -> tuple[str, str, float | None, str]:
    """The error body's code, message, retry_after (seconds) and reason, as far as they make
    sense."""
    try:
        body = json.loads(raw)
    except ValueError:
        return "", raw.decode("utf-8", "replace")[:300], None, ""
    if not isinstance(body, dict):
        return "", "", None, ""
    code, message, retry_after = body.get("code"), body.get("message"), body.get("retry_after")
    reason = body.get("reason")
    if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
        retry_after = None
    return (
        code if isinstance(code, str) else "",
        message if isinstance(message, str) else "",
        None if retry_after is None else min(max(0.0, float(retry_after)), 3600.0),
        reason[:100] if isinstance(reason, str) else "",
    )


def _seconds(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: the backoff decides
