"""Loopback stand-ins for Cloudflare: the D1 REST API (goldgate.cloudflare.d1_standin) and R2 (moto's S3)."""

from __future__ import annotations

import pytest
from r2_server import r2_admin


@pytest.fixture
def r2():
    with r2_admin("goldgate-test") as admin:
        yield admin
