"""Fixtures the driver tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bojdeploy.drivers.vm import connect_xen, disconnect_xen


@pytest.fixture
def session(sim: Any) -> Iterator[Any]:
    """A XenAPI session on the test module's simulator (its `sim` fixture)."""
    session = connect_xen(sim.url, "root", "pw")
    yield session
    disconnect_xen(session)
