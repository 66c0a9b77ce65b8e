"""Property mode: one hypothesis-driven test per entry with an ``explore:`` block x exporter x opset.

Collected only with ``pytest --explore`` (see harness/plugin.py and harness/explore.py).
"""

import pytest

from harness import status
from harness.explore import failure_message
from harness.plugin import xfail


def test_explore(explore_target, case_runner, request):
    """Draw configurations, run each through the isolated pipeline, shrink a failure."""
    record = case_runner.explore(explore_target, request.config)
    request.node.user_properties.append(("record", record))
    if record["status"] == status.PASS:
        return
    if not explore_target.declared.get("in_range", True):
        record["expected"] = {"status": [record["status"]], "reason": "outside the declared opset range"}
        xfail(f"opset {explore_target.opset} is outside the declared range "
                     f"({explore_target.declared['range']}): " + failure_message(record))
    pytest.fail(failure_message(record), pytrace=False)
