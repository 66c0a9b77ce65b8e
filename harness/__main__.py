"""``python -m harness <command>``: the harness's command-line tools.

``COMMANDS`` maps a command name to ``"module:function"``; the function takes
the remaining arguments (``argv``) and returns an exit code.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, str] = {
    "bench": "harness.bench:main",
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: python -m harness {" + ",".join(COMMANDS) + "} [args]")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    mod, _, fn = COMMANDS[argv[0]].partition(":")
    return getattr(importlib.import_module(mod), fn)(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
