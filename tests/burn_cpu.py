"""A process that burns CPU for the bench's sampler test: ``python burn_cpu.py SECONDS [--in-child]``.

With ``--in-child`` it only starts a copy of itself that burns, and waits for it,
so the CPU is used by a child of the process started.
"""

import subprocess
import sys
import time


def burn(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


if __name__ == "__main__":
    if "--in-child" in sys.argv[2:]:
        subprocess.run([sys.executable, __file__, sys.argv[1]], check=True)
    else:
        burn(float(sys.argv[1]))
