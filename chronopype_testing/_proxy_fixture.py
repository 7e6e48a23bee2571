"""The ``outage_proxy`` pytest fixture: OutageProxies on the test's FakeClock.

Registered by ``chronopype_testing.plugin``. It needs pytest-asyncio (the ``testing`` extra)
for its async teardown; without it, a test that asks for it fails with a message saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from chronopype_testing._proxy import OutageProxy
from chronopype_testing._proxy_faults import FaultLike

if TYPE_CHECKING:
    import random

    from chronopype_testing._loop import FakeClock

__all__ = ["OutageProxyFactory", "outage_proxy"]

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


def _report(problems: list[str]) -> None:
    if problems:
        pytest.fail(
            "\n".join(["outage_proxy: proxied connections left open by the client:", *problems]),
            pytrace=False,
        )


try:
    import pytest_asyncio
except ImportError:  # the testing extra is not installed

    @pytest.fixture
    def outage_proxy() -> Any:
        """Needs pytest-asyncio (pip install 'chronopype[testing]')."""
        pytest.fail(
            "the outage_proxy fixture needs pytest-asyncio (pip install 'chronopype[testing]')",
            pytrace=False,
        )

else:

    @pytest_asyncio.fixture
    async def outage_proxy(  # type: ignore[misc]  # one of two definitions
        fake_clock: FakeClock,
    ) -> AsyncIterator[OutageProxyFactory]:
        """Factory for ``chronopype_testing.OutageProxy``s on this test's fake clock.

        ``proxy = await outage_proxy((host, port), windows=[(60, 120, "blackhole")])`` starts
        a proxy to the real upstream ``(host, port)``; point the client at ``proxy.host`` and
        ``proxy.port`` (or ``proxy.rewrite(url)``). Asking for it makes the test a fake-clock
        test. At teardown the proxies close, and the test fails if the client left a
        proxied connection open.
        """
        factory = OutageProxyFactory()
        try:
            yield factory
        finally:
            problems = await factory.close()
        _report(problems)
