"""Property mode: one hypothesis-driven test per matrix entry x exporter x device.

Collected only with ``pytest --explore`` (see harness/plugin.py and harness/explore/property.py).
"""

import pytest

from harness.core import status
from harness.explore.property import failure_message, skipped_record
from harness.plugin import xfail


def test_explore(explore_target, case_runner, request):
    """Draw configurations, run each through the isolated pipeline, shrink a failure."""
    if explore_target.skip:
        request.node.user_properties.append(("record", skipped_record(explore_target)))
        pytest.skip(explore_target.skip)
    record = case_runner.explore(explore_target, request.config)
    request.node.user_properties.append(("record", record))
    if record["status"] == status.PASS:
        return
    declared = record.get("declared") or {}
    if not declared.get("in_range", True):
        record["expected"] = {"status": [record["status"]], "reason": "outside the declared opset range"}
        xfail(f"opset {record['opset']} is outside the declared range "
              f"({declared.get('range')}): " + failure_message(record))
    pytest.fail(failure_message(record), pytrace=False)
