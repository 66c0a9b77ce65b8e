"""Root conftest: the harness plugin does the work (see harness/plugin.py)."""

pytest_plugins = ["harness.plugin"]
