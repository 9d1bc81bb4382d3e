"""A stable id for a reference runner that was given none: "<hostname>-<slot>".

The slot is the lowest number whose lock file (in a directory of the data dir) no live process
holds locked. The lock is an exclusive `flock`, which the kernel drops when the process ends,
however it ends (SIGKILL included): so a runner restarted after a crash gets its old id back,
and with it its own run at once, while two runners alive on one host never share an id."""

from __future__ import annotations

import fcntl
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_SLOTS = 1000


@dataclass
class RunnerSlot:
    runner_id: str
    path: Path
    _handle: IO[str]

    def release(self) -> None:
        """Give the slot up (closing the file drops the lock); the process ending does too."""
        self._handle.close()


def _host_part(hostname: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", hostname).strip("._") or "runner"


def claim_runner_slot(directory: Path, hostname: str | None = None) -> RunnerSlot:
    """Lock the first free slot of this host in `directory` and name the runner after it."""
    host = _host_part(hostname or socket.gethostname())
    directory.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        path = directory / f"{host}-{slot}.lock"
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()  # a live runner holds this one
            continue
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")  # for people looking: which process holds it
        handle.flush()
        return RunnerSlot(f"{host}-{slot}", path, handle)
    raise RuntimeError(
        f"all {MAX_SLOTS} runner slots of {host} in {directory} are taken; "
        "give the runner an id with DEVICELAB_RUNNER_ID"
    )
