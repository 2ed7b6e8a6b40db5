"""The closed sets of delivery: what kind each failure cause is, what each settlement counts as."""

from __future__ import annotations

from dataclasses import replace

import pytest

from watcher.core.outbox import (
    DeliveryOutcome,
    FailureCause,
    FailureKind,
    SettleReason,
    TargetResult,
)

C, K = FailureCause, FailureKind


@pytest.mark.parametrize(
    ("cause", "kind"),
    [
        # the receiver or the network may do better on a later try
        (C.TIMEOUT, K.RETRYABLE),
        (C.CONNECTION, K.RETRYABLE),
        (C.SERVER_ERROR, K.RETRYABLE),
        (C.RATE_LIMITED, K.RETRYABLE),
        (C.MAIL_DEFERRED, K.RETRYABLE),
        # nothing was sent, or we do not know why: try again
        (C.BUSY, K.RETRYABLE),
        (C.CRASHED, K.RETRYABLE),
        (C.UNKNOWN, K.RETRYABLE),
        # too large passes once shorter: retryable (the resize happens before any retry)
        (C.TOO_LARGE, K.RETRYABLE),
        # the same message to the same URL will be refused again
        (C.REJECTED, K.PERMANENT),
        (C.CREDENTIALS, K.PERMANENT),
        (C.MAIL_REFUSED, K.PERMANENT),
        (C.BAD_URL, K.PERMANENT),
    ],
)
def test_each_failure_cause_is_of_one_kind_retryable_or_permanent(
    cause: FailureCause, kind: FailureKind
) -> None:
    assert cause.kind is kind
    failed = TargetResult("svc", "svc://", False, "", 0, cause)
    assert failed.kind is kind
    assert replace(failed, ok=True).kind is None  # a target that took it has no failure


def test_a_failed_target_that_does_not_say_why_has_no_kind_of_its_own() -> None:
    assert TargetResult("svc", "svc://", False).kind is None


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        # it reached every URL
        (SettleReason.DELIVERED, DeliveryOutcome.SENT),
        # tried and not everyone has it yet: it goes again
        (SettleReason.RETRY, DeliveryOutcome.FAILED),
        (SettleReason.HELD, DeliveryOutcome.FAILED),
        (SettleReason.RESIZED, DeliveryOutcome.FAILED),
        # given up on
        (SettleReason.PERMANENT_FAILURE, DeliveryOutcome.DEAD),
        (SettleReason.EXPIRED, DeliveryOutcome.DEAD),
        # not tried at all: nothing to count
        (SettleReason.POSTPONED, None),
    ],
)
def test_each_settlement_counts_as_one_delivery_outcome_or_none_when_nothing_was_tried(
    reason: SettleReason, outcome: DeliveryOutcome | None
) -> None:
    assert reason.outcome is outcome


def test_the_delivery_outcome_labels_keep_their_metric_strings() -> None:
    """`gradient_watcher_deliveries{outcome}` values are part of the metrics contract."""
    assert [o.value for o in DeliveryOutcome] == ["sent", "failed", "dead"]
