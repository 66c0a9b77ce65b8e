"""Where each framework runs: the Python interpreter of its runner, and whether it is set up.

Paddle and PyTorch live in the project's main environment. Frameworks that
cannot share it (another interpreter version, libraries that clash on import)
are declared as environments of their own; their runner master is started
with that environment's interpreter.
"""

from __future__ import annotations

import sys


def interpreter(framework: str) -> str:
    """The Python executable that runs ``framework``'s runner master."""
    return sys.executable


def unavailable(framework: str) -> str | None:
    """None when ``framework``'s environment is ready, else why not and how to create it."""
    return None
