"""``python -m tests.torchvision_probe [--plain]``: does torchvision import and export here?

Run by :mod:`tests.test_models` in a fresh process (an import cannot be undone
in the test process). ``--plain`` imports torchvision as a user would; without
it, through the torch adapter's :func:`harness.frameworks.torch.import_torchvision`,
then builds torchvision's resnet18 and exports it with TorchScript. Prints one
JSON line: what happened.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def main(argv: list[str]) -> int:
    """Print ``{"imported": bool, "error": str, "exported": bool, "defined": [...]}``."""
    facts: dict = {"imported": False, "error": "", "exported": False}
    try:
        if argv[:1] == ["--plain"]:
            import torchvision
        else:
            from harness.frameworks import torch as adapter

            torchvision = adapter.import_torchvision()
            facts["defined"] = [s.split("(")[0] for s in adapter.TORCHVISION_SCHEMAS] \
                if adapter._TORCHVISION_LIBRARY else []
        facts["imported"] = True
    except Exception as exc:  # noqa: BLE001 - the fact under test
        facts["error"] = f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps(facts))
        return 0
    import torch

    model = torchvision.models.resnet18(weights=None).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "resnet18.onnx")
        torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), path, dynamo=False, opset_version=17)
        facts["exported"] = os.path.getsize(path) > 1_000_000
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
