"""Tests that break things on purpose to prove DESIGN.md's promises: API faults, crashes, store
and notifier failures, hostile input and secrets.

Hypothesis runs derandomized (the same examples every run, as CI needs) unless
`HYPOTHESIS_PROFILE=promises-explore` asks for fresh random examples.
"""

import os

from hypothesis import settings

settings.register_profile(
    "promises-ci", max_examples=200, deadline=None, derandomize=True, database=None
)
settings.register_profile("promises-explore", max_examples=200, deadline=None, database=None)
PROPERTY = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "promises-ci"))
