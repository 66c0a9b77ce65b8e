"""Test-only adapter of the framework ``brokenfw``, whose import fails as ``HARNESS_FAKE_BROKEN`` says.

Imported as ``harness.frameworks.brokenfw`` (tests/fake_broken.py puts this folder on that
package's path), so only the runner imports it, as it imports a real framework's adapter:

* ``import``: a shared library of the install is missing (``ImportError``): a broken install;
* ``memory``: the import runs out of memory (``MemoryError``): a broken install too;
* ``oom``: the process is killed while importing (SIGKILL, as the kernel's OOM killer does);
* ``missing``: the framework's own package is absent (``ModuleNotFoundError``): not installed;
* unset: it imports, and behaves like the fake framework (tests/fakes.py).
"""

from __future__ import annotations

import errno
import os

_HOW = os.environ.get("HARNESS_FAKE_BROKEN", "")
if _HOW == "import":
    raise ImportError("libbrokenfw_core.so.1: cannot open shared object file: No such file or directory")
if _HOW == "memory":
    raise MemoryError("out of memory while loading brokenfw's kernels")
if _HOW == "oom":
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
if _HOW == "missing":
    raise ModuleNotFoundError("No module named 'brokenfw'", name="brokenfw")

from harness.core import registry  # noqa: E402
from tests import fakes  # noqa: E402


@registry.register_framework
class BrokenFramework(fakes.FakeFramework):
    name = "brokenfw"


@registry.register_exporter("brokenfw")
class BrokenExporter(fakes.FakeExporter):
    """The fake exporter; ``disk-full`` raises what a write to a full temporary folder raises."""

    name = "brokenfw"

    def export(self, model, case, workdir, cache):
        if model == "disk-full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(workdir, case.id + ".onnx"))
        return super().export(model, case, workdir, cache)
