"""Root conftest: the harness plugin does the work (see harness/plugin.py)."""

# pytester: the harness's own tests run pytest sessions with it (tests/conftest.py)
pytest_plugins = ["harness.plugin", "pytester"]
