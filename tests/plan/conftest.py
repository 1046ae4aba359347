"""Hypothesis profiles for the planner's tests.

``HYPOTHESIS_PROFILE=ci`` makes every run reproducible (derandomized, no example database);
the default keeps hypothesis's random exploration, which is how new counterexamples are
found. Each test sets its own ``max_examples`` so that the planner's tests stay well under
20 s on two cores.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
if profile := os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(profile)
