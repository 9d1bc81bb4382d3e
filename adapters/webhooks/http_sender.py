"""Deliveries over HTTP(S) with the standard library. The connection goes to the address the
policy checked (never to what the name resolves to a moment later, so a name cannot be
re-pointed inside the lab between check and send); TLS still verifies the host name. No
redirect is followed: a 3xx is a failed delivery."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from application.webhook_ports import SendFailed


class SystemResolver:
    def addresses(self, host: str, port: int) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as error:
            raise SendFailed(f"cannot resolve {host}: {error}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, **kwargs) -> None:
        super().__init__(host, **kwargs)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, **kwargs) -> None:
        super().__init__(host, **kwargs)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class HttpWebhookSender:
    def __init__(self, timeout_s: float = 10, context: ssl.SSLContext | None = None) -> None:
        self.timeout_s = timeout_s
        self.context = context or ssl.create_default_context()

    def send(self, url: str, address: str, body: bytes, headers: Mapping[str, str]) -> int:
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # given explicitly: http.client would split an IPv6 literal's last group off as a port
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme == "https":
            connection: http.client.HTTPConnection = _PinnedHTTPSConnection(
                parts.hostname,
                address,
                port=port,
                timeout=self.timeout_s,
                context=self.context,
            )
        else:
            connection = _PinnedHTTPConnection(
                parts.hostname, address, port=port, timeout=self.timeout_s
            )
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read(64 * 1024)  # what the receiver says is not kept
        except (OSError, http.client.HTTPException) as error:
            raise SendFailed(f"{type(error).__name__}: {error}") from None
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise SendFailed(f"HTTP {response.status} {response.reason}", response.status)
        return response.status
