"""Reading the host's never-stepping clocks, tagged with the boot they belong to.

- `elapsed_now()`: CLOCK_BOOTTIME (Linux), which counts time spent suspended: how long a job
  has not moved is time that passed in the world, asleep or not.
- `monotonic_now()`: CLOCK_MONOTONIC, which does not: the event loop's clock, the poll
  schedule's, and systemd's watchdog's; the health rule measures cycles on it.

Both clocks are system-wide on Linux, so two processes on one host (the daemon and
`watcher health`, a container and `docker exec` into it) can compare their readings; they
restart at each boot, so every reading carries the kernel's boot id and readings of two boots
are never compared (the store's lease reads CLOCK_BOOTTIME too: `watcher.edges.host`). Time
namespaces (Linux 5.6+, unused by Docker and Kubernetes by default) would offset both;
across hosts the boot ids differ and nothing is compared.
"""

from __future__ import annotations

import time

from watcher.core.clocks import Elapsed
from watcher.edges.host import boot_id


def elapsed_now() -> Elapsed:
    """CLOCK_BOOTTIME now (CLOCK_MONOTONIC where the platform lacks it), with the boot id."""
    clock = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
    return Elapsed(time.clock_gettime(clock), boot_id())


def monotonic_now() -> Elapsed:
    """CLOCK_MONOTONIC now (what `time.monotonic()` and the event loop read), with the boot id.

    Read through `clock_gettime`, which test tools that freeze `time.monotonic` leave alone.
    """
    return Elapsed(time.clock_gettime(time.CLOCK_MONOTONIC), boot_id())
