"""The ``outage_proxy`` pytest fixture: OutageProxies on the test's FakeClock.

Registered by ``chronopype_testing.plugin``. It needs pytest-asyncio (the ``testing`` extra)
for its async teardown; without it, a test that asks for it fails with a message saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pytest

from chronopype_testing._proxy import OutageProxy
from chronopype_testing._proxy_faults import FaultLike

if TYPE_CHECKING:
    import random


__all__ = ["OutageProxyFactory", "report_left_open"]

# Loop iterations granted at teardown for closes the client already made to reach the proxy.
_SETTLE_ITERATIONS = 10


class OutageProxyFactory:
    """``await outage_proxy((host, port), windows=[...])``: a started OutageProxy.

    Takes OutageProxy's arguments. At teardown every proxy is closed, and the test fails if
    the client left a proxied connection open.
    """

    def __init__(self) -> None:
        self.proxies: list[OutageProxy] = []

    async def __call__(
        self,
        upstream: tuple[str, int],
        *,
        windows: Iterable[tuple[float, float, FaultLike]] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        rng: random.Random | None = None,
    ) -> OutageProxy:
        proxy = OutageProxy(upstream, windows=windows, host=host, port=port, rng=rng)
        await proxy.start()
        self.proxies.append(proxy)
        return proxy

    async def close(self) -> list[str]:
        """Close every proxy; return one line per connection the client left open."""
        for _ in range(_SETTLE_ITERATIONS):
            await asyncio.sleep(0)
        problems = []
        for proxy in self.proxies:
            for connection in proxy.open_connections():
                if not connection.client_closed:
                    problems.append(
                        f"{proxy!r}: the client left {connection!r} open (opened "
                        f"{connection.opened_at:g} s after the proxy started)"
                    )
            await proxy.aclose()
        return problems


def report_left_open(problems: list[str]) -> None:
    if problems:
        pytest.fail(
            "\n".join(["outage_proxy: proxied connections left open by the client:", *problems]),
            pytrace=False,
        )
