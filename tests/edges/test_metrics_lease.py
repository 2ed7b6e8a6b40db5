"""The lease and replica gauges: whether this process polls, its epoch, the replicas seen."""

from __future__ import annotations

from watcher.edges.metrics import Metrics


def test_the_lease_gauges_say_who_polls_under_which_epoch_among_how_many() -> None:
    metrics = Metrics()
    metrics.set_lease(True, 3, 2)
    text = metrics.render().decode()
    assert "gradient_watcher_lease_held 1.0" in text
    assert "gradient_watcher_lease_epoch 3.0" in text
    assert "gradient_watcher_replicas 2.0" in text
    metrics.set_lease(False, None)  # standing by; the replicas not read this time
    text = metrics.render().decode()
    assert "gradient_watcher_lease_held 0.0" in text
    assert "gradient_watcher_lease_epoch 0.0" in text
    assert "gradient_watcher_replicas 2.0" in text
