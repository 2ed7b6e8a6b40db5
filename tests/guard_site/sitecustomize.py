"""Installs the store guard (`tests.storeguard`) in a test's child Python process."""

import os

if os.environ.get("GW_TEST_STORE_GUARD") == "1":
    from tests import storeguard

    storeguard.install(abort=True)
