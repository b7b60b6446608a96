"""Requests this service makes to addresses its users give (webhooks): http(s) only, to public
addresses only unless the operator allows private ones, no redirects followed, and errors that say
what failed without telling an open port from a closed one.

The address is checked when the URL is saved and again, on the address actually connected to,
at every delivery (a name can resolve elsewhere later).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

# Set from the service setting WEBHOOK_ALLOW_PRIVATE when the app starts (tests and local setups).
private_addresses_allowed = False


class DeliveryError(OSError):
    """A delivery that failed before an HTTP status came back; the message is safe to show."""


# Refused, timed out, reset, not HTTP, TLS failed: one message, so that nobody maps which ports of
# a host are open through the deliveries' errors.
NO_RESPONSE = "no HTTP response from the receiver (connection failed, timed out, or not HTTP/TLS)"


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise DeliveryError(f"could not resolve the host {host!r}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def _port(parts: SplitResult) -> int:
    """The URL's port, or its scheme's; raises ValueError for one out of range."""
    return parts.port or (443 if parts.scheme == "https" else 80)


def url_problem(url: str) -> str | None:
    """Why a webhook URL cannot be saved, or None. A name that does not resolve now is accepted
    (it may later); one that resolves to a private address is not, unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "must not contain spaces or control characters"
    try:
        port = _port(parts)
    except ValueError:
        return "has an invalid port"
    if private_addresses_allowed:
        return None
    try:
        addresses = _addresses(parts.hostname, port)
    except DeliveryError:
        return None
    if not all(_is_public(a) for a in addresses):
        return ("points at a private, loopback or link-local address; set LABELING_WEBHOOK_ALLOW_PRIVATE "
                "to allow that")
    return None


class _CheckedConnection:
    """Connects to one vetted address of the host, so the address checked is the one used."""

    def connect(self) -> None:
        addresses = _addresses(self.host, self.port)
        allowed = addresses if private_addresses_allowed else [a for a in addresses if _is_public(a)]
        if not allowed:
            raise DeliveryError("the host resolves to a private address, which is not allowed")
        for i, address in enumerate(allowed):  # in the resolver's order, as a browser would
            try:
                self.sock = socket.create_connection((address, self.port), self.timeout)
                break
            except OSError:
                if i == len(allowed) - 1:
                    raise
        if isinstance(self, http.client.HTTPSConnection):
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


class _HTTP(_CheckedConnection, http.client.HTTPConnection):
    pass


class _HTTPS(_CheckedConnection, http.client.HTTPSConnection):
    pass


def post(url: str, headers: dict[str, str], body: bytes, *, timeout: float) -> int:
    """POST and return the status code (a redirect is returned, not followed); raises
    DeliveryError when no status came back."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("the URL is not http(s)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = None
    try:
        # The port always given: http.client would read an IPv6 literal's last group as one.
        port = _port(parts)
        connection_class = _HTTPS if parts.scheme == "https" else _HTTP
        connection = connection_class(parts.hostname, port, timeout=timeout)
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    except DeliveryError:
        raise
    except (ValueError, http.client.InvalidURL):  # a malformed URL (bad port, characters http.client refuses)
        raise DeliveryError("the URL cannot be requested") from None
    except (OSError, http.client.HTTPException):  # ssl.SSLError is an OSError
        raise DeliveryError(NO_RESPONSE) from None
    finally:
        if connection is not None:
            connection.close()
