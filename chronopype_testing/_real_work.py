"""Real work seen by a FakeClock loop: peer addresses, and the ledger of real waits.

The loop holds virtual time still while real work is outstanding (see ``FakeClock``).
This module keeps what that needs apart from the loop itself: matching socket peers
against declared-silent and in-loop addresses, and the ledger that records how many
real seconds were spent holding time, and for what.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping

__all__ = ["ANY_HOST", "PeerKey", "RealWorkLedger", "address_keys", "peer_key", "socket_ends"]

# A peer as the loop compares it: (canonical IP text, port); the IP is ANY_HOST for a
# wildcard listener, which matches every host on that port.
PeerKey = tuple[str, int]
ANY_HOST = "*"


def _canonical_ip(host: str) -> str:
    """The canonical text of an IP literal (IPv4-mapped IPv6 becomes IPv4)."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def address_keys(address: object) -> frozenset[PeerKey]:
    """Every (ip, port) a client may see as the peer address of the local ``address``."""
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError(f"address must be a (host, port) tuple, not {address!r}")
    host, port = address[0], address[1]
    if not isinstance(host, str):
        raise TypeError(f"address host must be a str, not {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"address port must be an int, not {type(port).__name__}")
    if not 0 < port < 65_536:
        raise ValueError(f"address port must be in 1..65535, got {port!r}")
    if host in ("", "0.0.0.0", "::"):
        return frozenset({(ANY_HOST, port)})
    try:
        return frozenset({(_canonical_ip(host), port)})
    except ValueError:
        pass
    # A host name ("localhost"): every address it resolves to.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"cannot resolve address host {host!r}: {exc}") from exc
    return frozenset((_canonical_ip(str(info[4][0])), port) for info in infos)


def peer_key(name: object) -> PeerKey | None:
    """A socket name (``getpeername()``/``getsockname()``) as a PeerKey; None if not IP."""
    if isinstance(name, tuple) and len(name) >= 2 and isinstance(name[0], str):
        try:
            return (_canonical_ip(name[0]), int(name[1]))
        except ValueError:
            return None
    return None


def socket_ends(fd: int) -> tuple[PeerKey | None, PeerKey | None] | None:
    """(local, peer) of the socket behind ``fd``; None if ``fd`` is not a socket."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        local = peer_key(sock.getsockname())
        try:
            peer = peer_key(sock.getpeername())
        except OSError:
            peer = None
        return local, peer
    finally:
        sock.detach()  # the fd belongs to its owner, not to this probe


def matches(key: PeerKey | None, addresses: Mapping[PeerKey, object] | set[PeerKey]) -> bool:
    return key is not None and (key in addresses or (ANY_HOST, key[1]) in addresses)


class RealWorkLedger:
    """Real seconds a loop spent waiting for real work while it held virtual time."""

    __slots__ = ("by_reason", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.by_reason: dict[str, float] = {}

    def record(self, seconds: float, reasons: Iterable[str]) -> None:
        self.seconds += seconds
        by_reason = self.by_reason
        for reason in reasons:
            by_reason[reason] = by_reason.get(reason, 0.0) + seconds

    def summary(self, limit: int = 5) -> str:
        """``"1.23 s real: reason (s), ..."`` naming the reasons that cost the most."""
        top = sorted(self.by_reason.items(), key=lambda item: -item[1])[:limit]
        reasons = ", ".join(f"{reason} ({seconds:.2f} s)" for reason, seconds in top)
        more = len(self.by_reason) - len(top)
        if more > 0:
            reasons += f", and {more} more"
        return f"{self.seconds:.2f} s real" + (f": {reasons}" if reasons else "")
