"""The replicas of a shared store, as `watcher status` and the metrics tell them. Pure.

Each replica on a shared store (PostgreSQL) records itself at every lease step: which process
it is, which poller lease it steps, whether it holds it (with the epoch) and when, on the
database's clock, it last did. A replica not seen for `STALE_AFTER` lease periods is gone
(killed, or its host is): it is no longer counted, and the next step of any replica deletes
its record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from watcher.core.lease import Holder, Lease

STALE_AFTER: Final = 3.0
"""Lease periods after which a replica's record counts as gone."""


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica's record: `seen` in seconds on the lease clock, `epoch` None when it
    stands by, `duration` the lease period it steps with (seconds)."""

    holder: Holder
    lease: str
    epoch: int | None
    seen: float
    duration: float

    def live(self, now: float) -> bool:
        """Whether it stepped within `STALE_AFTER` lease periods of `now`."""
        return now - self.seen <= STALE_AFTER * self.duration


Leases = list[tuple[str, Lease | None]]
"""Every poller lease of a store by name (None: a row never written)."""


def _who(holder: Holder) -> dict[str, object]:
    return {"command": holder.command, "pid": holder.pid, "host": holder.host}


def replica_lines(replicas: list[Replica], leases: Leases, now: float) -> list[str]:
    """`watcher status` lines: every live replica and what it does, then every lease."""
    live = sorted((r for r in replicas if r.live(now)), key=lambda r: (r.epoch is None, -r.seen))
    holders = {name: lease.holder.id for name, lease in leases if lease and lease.holder}
    lines = [f"Replicas: {len(live)} on this store"]
    for r in live:
        if r.epoch is None:
            doing = "stands by, delivers"
        elif holders.get(r.lease) == r.holder.id:
            doing = f"polls {r.lease} (epoch {r.epoch}), delivers"
        else:  # killed, paused or cut off since: another replica took the lease over
            doing = f"silent since it polled {r.lease} (epoch {r.epoch}), taken over"
        lines.append(f"  {r.holder.describe()}: {doing}; seen {max(now - r.seen, 0):.0f}s ago")
    for name, lease in leases:
        if lease is None or lease.holder is None:
            lines.append(f"Lease {name}: free (epoch {lease.epoch if lease else 0})")
            continue
        left = lease.expires - now
        state = f"expires in {left:.0f}s" if left > 0 else f"ran out {-left:.0f}s ago"
        lines.append(
            f"Lease {name}: epoch {lease.epoch}, held by {lease.holder.describe()}, {state}"
        )
    return lines


def replicas_json(replicas: list[Replica], leases: Leases, now: float) -> dict[str, object]:
    """The same for `status --json`."""
    return {
        "replicas": [
            {
                **_who(r.holder),
                "lease": r.lease,
                "epoch": r.epoch,
                "seen_s_ago": round(max(now - r.seen, 0.0), 1),
            }
            for r in replicas
            if r.live(now)
        ],
        "leases": [
            {
                "name": name,
                "epoch": lease.epoch if lease else 0,
                "holder": None
                if lease is None or lease.holder is None
                else {
                    "command": lease.holder.command,
                    "pid": lease.holder.pid,
                    "host": lease.holder.host,
                },
                "expires_in_s": None if lease is None else round(lease.expires - now, 1),
            }
            for name, lease in leases
        ],
    }
