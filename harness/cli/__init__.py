"""The ``python -m harness`` commands, one module each (registered in ``harness.__main__.COMMANDS``)."""
