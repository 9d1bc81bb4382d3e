"""The reference Test Runner's use cases: take a job from the queue, execute its test cases on
its devices, report to devicelab's callback API, and decide what becomes of the message."""

from application.runner.execute_job import (
    CancelJob,
    Disposition,
    ExecuteJob,
    JobOutcome,
    RunControl,
    RunnerOptions,
    RunningJobs,
    StopReason,
)
from application.runner.jobs import (
    Callback,
    Cancellation,
    InvalidJob,
    Job,
    UnsupportedContractVersion,
    parse_cancellation,
    parse_job,
)
from application.runner.ports import (
    CallbackClient,
    CallbackReply,
    CallbackStatus,
    CancelSignal,
    ExecutionRequest,
    Executor,
    MetricsWriter,
    ReportPartial,
)

__all__ = [
    "Callback",
    "CallbackClient",
    "CallbackReply",
    "CallbackStatus",
    "CancelJob",
    "CancelSignal",
    "Cancellation",
    "Disposition",
    "ExecuteJob",
    "ExecutionRequest",
    "Executor",
    "InvalidJob",
    "Job",
    "JobOutcome",
    "MetricsWriter",
    "ReportPartial",
    "RunControl",
    "RunnerOptions",
    "RunningJobs",
    "StopReason",
    "UnsupportedContractVersion",
    "parse_cancellation",
    "parse_job",
]
