"""The replicas of a shared store as `watcher status` tells them: who polls, who stands by,
who went silent, and each lease's epoch and expiry."""

from __future__ import annotations

import pytest

from watcher.core.lease import Holder, Lease
from watcher.core.replicas import Replica, replica_lines, replicas_json

NOW = 1000.0  # seconds on the database's clock
A = Holder("a", "watcher run", "web-1", 11, "2026-11-28T12:00:00Z")
B = Holder("b", "watcher run", "web-2", 22, "2026-11-28T12:00:05Z")
LEASE = "token:0123456789abcdef"


def replica(holder: Holder, epoch: int | None, seen: float = NOW - 1) -> Replica:
    return Replica(holder, LEASE, epoch, seen, 30.0)


@pytest.mark.parametrize(
    ("replicas", "lease", "expected"),
    [
        # the holder polls, the other stands by; both deliver
        (
            [replica(A, 3), replica(B, None)],
            Lease(A, 3, "postgresql", NOW + 20, 30.0),
            [
                "Replicas: 2 on this store",
                f"  {A.describe()}: polls {LEASE} (epoch 3), delivers; seen 1s ago",
                f"  {B.describe()}: stands by, delivers; seen 1s ago",
                f"Lease {LEASE}: epoch 3, held by {A.describe()}, expires in 20s",
            ],
        ),
        # A was paused and B took over: A's record still says epoch 3, the lease says 4
        (
            [replica(A, 3, NOW - 40), replica(B, 4)],
            Lease(B, 4, "postgresql", NOW + 29, 30.0),
            [
                "Replicas: 2 on this store",
                f"  {B.describe()}: polls {LEASE} (epoch 4), delivers; seen 1s ago",
                f"  {A.describe()}: silent since it polled {LEASE} (epoch 3), taken over;"
                " seen 40s ago",
                f"Lease {LEASE}: epoch 4, held by {B.describe()}, expires in 29s",
            ],
        ),
        # A killed long ago (three lease periods): no longer counted; the lease ran out
        (
            [replica(A, 3, NOW - 91)],
            Lease(A, 3, "postgresql", NOW - 61, 30.0),
            [
                "Replicas: 0 on this store",
                f"Lease {LEASE}: epoch 3, held by {A.describe()}, ran out 61s ago",
            ],
        ),
        # a graceful stop released the lease
        (
            [],
            Lease(None, 5, "postgresql", NOW, 30.0),
            ["Replicas: 0 on this store", f"Lease {LEASE}: free (epoch 5)"],
        ),
    ],
)
def test_status_lines_name_each_replica_and_lease(
    replicas: list[Replica], lease: Lease, expected: list[str]
) -> None:
    assert replica_lines(replicas, [(LEASE, lease)], NOW) == expected


def test_the_json_lists_live_replicas_and_every_lease_without_boot_details() -> None:
    data = replicas_json([replica(A, 3), replica(B, None, NOW - 500)], [(LEASE, None)], NOW)
    assert data == {
        "replicas": [
            {
                "command": "watcher run",
                "pid": 11,
                "host": "web-1",
                "lease": LEASE,
                "epoch": 3,
                "seen_s_ago": 1.0,
            }
        ],
        "leases": [{"name": LEASE, "epoch": 0, "holder": None, "expires_in_s": None}],
    }
