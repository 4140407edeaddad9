"""The HTTP tests' shared fixture: run a test on both socket layers under httpcore."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.http import scripted


@pytest.fixture(params=["asyncio", "anyio"])
def both_network_backends(request: pytest.FixtureRequest) -> Iterator[None]:
    scripted.NETWORK_BACKEND[0] = request.param
    yield
    scripted.NETWORK_BACKEND[0] = "asyncio"
