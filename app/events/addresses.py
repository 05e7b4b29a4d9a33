"""Where a delivery may go (SSRF): the URL's rules at creation, its addresses at every send.

A name is resolved when the endpoint is created and again before each POST (it may have been
repointed since), and the POST goes to the address that was checked, never to a second
look-up: every address must be public; loopback only in sandbox, for the demo shop and a
developer's receiver. https only in live mode."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit


class AddressRefused(Exception):
    """The URL may not receive events; the message says why (shown to the merchant)."""


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed(ip: IpAddress, allow_loopback: bool) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


# A DNS name (after IDNA): labels of letters, digits and hyphens.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _host_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.lower().rstrip(".").split(".")
    return len(ascii_host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def url_problem(url: str, *, live: bool) -> str | None:
    """What is wrong with `url` as an endpoint, before any look-up (None: nothing)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http"):
        return "must be an https:// URL"
    if live and parts.scheme != "https":
        return "must be an https:// URL in live mode"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if not parts.hostname:
        return "must name a host"
    if not _host_ok(parts.hostname):
        return "has an invalid host name"
    if parts.fragment:
        return "must not have a #fragment"
    return None


def target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or (443 if parts.scheme == "https" else 80)


async def resolve(url: str, *, allow_loopback: bool) -> str:
    """The address to send to: every address the host has must be allowed (a name with one
    private address among public ones is refused: which one a client picks is not ours)."""
    host, port = target(url)
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise AddressRefused(f"the host {host!r} could not be resolved") from None
        found = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not found:
            raise AddressRefused(f"the host {host!r} has no address")
    for ip in found:
        if not _allowed(ip, allow_loopback):
            kind = "a loopback" if ip.is_loopback else "a private, link-local or reserved"
            raise AddressRefused(
                f"the host {host!r} resolves to {kind} address ({ip}); events are sent only "
                "to public addresses" + (" (and loopback in sandbox)" if not allow_loopback else "")
            )
    return str(found[0])
