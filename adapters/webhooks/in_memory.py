"""In-memory twins of the webhook ports: a fixed name table and a sender that records what it
was given and answers as scripted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from application.webhook_ports import SendFailed


@dataclass
class StaticResolver:
    names: dict[str, list[str]] = field(default_factory=dict)

    def addresses(self, host: str, port: int) -> list[str]:
        if host in self.names:
            return list(self.names[host])
        if host.replace(".", "").isdigit() or ":" in host:
            return [host]
        raise SendFailed(f"unknown host {host}")


@dataclass
class Sent:
    url: str
    address: str
    body: bytes
    headers: dict[str, str]


@dataclass
class RecordingSender:
    """Answers 200 unless `down` (then the receiver is unreachable) or `status` says else."""

    sent: list[Sent] = field(default_factory=list)
    down: bool = False
    status: int = 200

    def send(self, url: str, address: str, body: bytes, headers: Mapping[str, str]) -> int:
        if self.down:
            raise SendFailed("connection refused")
        self.sent.append(Sent(url, address, body, dict(headers)))
        if not 200 <= self.status < 300:
            raise SendFailed(f"HTTP {self.status}", self.status)
        return self.status
