"""SQL repositories: the ports of `application.ports` on SQLAlchemy Core.

Rows are mapped to domain entities and back by hand; the domain never sees SQLAlchemy. Each
read returns fresh entities (changing one changes nothing until `update()`), and nothing here
commits: the unit of work owns the transaction.

Concurrency: devices and runs carry a version that `update()` checks and bumps (optimistic
locking), and `get_many_for_update` / `get(for_update=True)` take row locks on PostgreSQL.
SQLite has no row locks; the engine opens every transaction with BEGIN IMMEDIATE instead, which
serialises writers (see `engine.py`).

One module per aggregate (devices, test cases, environments, test runs, holds, the outbox and
change feed, stream leases, statistics, result summaries); importers use this package.
"""

from adapters.persistence.repositories.base import is_transient
from adapters.persistence.repositories.change_feed import (
    PENDING_CHANGES,
    SqlChangeFeed,
    SqlOutbox,
    forget_logged_changes,
    write_logged_changes,
)
from adapters.persistence.repositories.devices import SqlDeviceRepository
from adapters.persistence.repositories.environments import SqlEnvironmentRepository
from adapters.persistence.repositories.health_checks import SqlHealthChecks
from adapters.persistence.repositories.holds import SqlHoldRepository
from adapters.persistence.repositories.plans import (
    SqlFirmwareSightings,
    SqlPlanRepository,
    SqlPlanRunRepository,
)
from adapters.persistence.repositories.results import SqlResults
from adapters.persistence.repositories.run_logs import SqlArtifacts, SqlRunLogs
from adapters.persistence.repositories.runners import SqlRunners
from adapters.persistence.repositories.statistics import SqlStatistics
from adapters.persistence.repositories.stream_leases import SqlStreamLeases
from adapters.persistence.repositories.test_cases import SqlTestCaseRepository
from adapters.persistence.repositories.test_runs import SqlTestRunRepository
from adapters.persistence.repositories.trends import SqlTrends
from adapters.persistence.repositories.utilisation import SqlTimelines
from adapters.persistence.repositories.webhooks import SqlWebhooks

__all__ = [
    "PENDING_CHANGES",
    "SqlArtifacts",
    "SqlChangeFeed",
    "SqlDeviceRepository",
    "SqlEnvironmentRepository",
    "SqlFirmwareSightings",
    "SqlHealthChecks",
    "SqlHoldRepository",
    "SqlOutbox",
    "SqlPlanRepository",
    "SqlPlanRunRepository",
    "SqlResults",
    "SqlRunLogs",
    "SqlRunners",
    "SqlStatistics",
    "SqlStreamLeases",
    "SqlTestCaseRepository",
    "SqlTestRunRepository",
    "SqlTimelines",
    "SqlTrends",
    "SqlWebhooks",
    "forget_logged_changes",
    "is_transient",
    "write_logged_changes",
]
