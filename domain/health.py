"""Device health: whether the device's last health check says it can be trusted with other
people's runs. Kept beside the device's status, not folded into it: a bad device is still
`available` (nobody holds it, it is in service), only booking treats it differently — it gets
its health checks and nothing else until an engineer clears it or a later check passes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class DeviceHealth(enum.StrEnum):
    GOOD = "good"  # the last health check passed
    UNKNOWN = "unknown"  # never checked, or cleared by an engineer since it went bad
    BAD = "bad"  # the last health check failed or was inconclusive


@dataclass(frozen=True)
class HealthNote:
    """What set the health: the health-check run (None when a person cleared it), why, who
    and since when."""

    run_id: str | None
    reason: str
    by: str
    since: datetime


# A health check that could not judge the device (inconclusive: a criterion without a
# measurement, a case the runner never reported) counts as failed: a device that does not
# answer its health check is exactly the one that would spoil the next person's run.
FAILING_VERDICTS = frozenset({"fail", "inconclusive"})
