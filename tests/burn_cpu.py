"""A process that burns CPU for the bench's sampler test.

``python burn_cpu.py SECONDS [--in-child] [--report FILE]``: burns SECONDS of CPU, writes the CPU
seconds it used in all (its start-up included) to FILE, then idles half a second so that a sampler
reading ``/proc`` every few milliseconds sees its final CPU time before it exits. With ``--in-child``
it only starts a copy of itself that does this, and waits for it, so the CPU is used by a child of
the process started.
"""

import subprocess
import sys
import time


def burn(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


if __name__ == "__main__":
    args = sys.argv[1:]
    report = args[args.index("--report") + 1] if "--report" in args else None
    if "--in-child" in args:
        subprocess.run([sys.executable, __file__, args[0]] + (["--report", report] if report else []), check=True)
    else:
        burn(float(args[0]))
        if report:
            with open(report, "w") as f:
                f.write(repr(time.process_time()))
        time.sleep(0.5)
