"""`[cost]` (job cost, `cost_spike`) and `[remediation]` (cancel and reindex a stalled job).

Both are off unless configured: `cost.spike_factor` unset means no `cost_spike` event, and
`remediation.on_stalled = "nothing"` (the default) means the watcher never writes to the API.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from watcher.config.sections import Duration, Section
from watcher.core.cost import SpikeRule
from watcher.core.costing import KEEP_COSTS
from watcher.core.remedy import OnStalled, RemedyPolicy


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class CostConfig(Section):
    """`[cost]`: `spike_factor` (a job costing more than this many times its KB's median of
    its last `spike_window` priced jobs, given at least `spike_min_history`, is `cost_spike`;
    unset = off) and how often the models list and catalog are read for prices
    (`prices_every`, about hourly)."""

    spike_factor: float | None = Field(default=None, gt=1.0, le=1000.0)
    # at most the costs kept per KB (`KEEP_COSTS`): a larger window or history could never fill
    spike_min_history: int = Field(default=3, ge=1, le=KEEP_COSTS)
    spike_window: int = Field(default=10, ge=1, le=KEEP_COSTS)
    prices_every: Duration = timedelta(hours=1)

    @model_validator(mode="after")
    def _history_fits_the_window(self) -> CostConfig:
        if self.spike_min_history > self.spike_window:
            raise ValueError(
                f"spike_min_history ({self.spike_min_history}) is more than spike_window "
                f"({self.spike_window}): the window could never hold that many jobs, and "
                "cost_spike would never fire"
            )
        return self

    def spike_rule(self) -> SpikeRule:
        """The core's rule for `cost_spike`."""
        return SpikeRule(self.spike_factor, self.spike_min_history, self.spike_window)


class RemediationConfig(Section):
    """`[remediation]`: what to do with a stalled job (`on_stalled`: "nothing", the default, or
    "cancel_and_reindex"), at most `max_attempts` times per KB per incident, or only say what
    would be done (`dry_run`)."""

    on_stalled: Annotated[OnStalled, BeforeValidator(_lower)] = OnStalled.NOTHING
    max_attempts: int = Field(default=1, ge=1, le=10)
    dry_run: bool = False

    def policy(self) -> RemedyPolicy:
        """The core's policy."""
        return RemedyPolicy(self.on_stalled, self.max_attempts, self.dry_run)
