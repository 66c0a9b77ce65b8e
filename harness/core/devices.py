"""Devices a run can use, and the per-device setting a case runner needs.

A device is ``cpu`` or ``cuda:N``. What is *present* is decided once by the
pytest controller without importing torch or paddle:

* ``cpu`` always;
* ``cuda:N`` for each GPU that ``nvidia-smi -L`` lists, but only when the
  installed onnxruntime offers ``CUDAExecutionProvider`` (otherwise a CUDA
  case could not be measured on the GPU anyway).

A case whose device is not present is skipped with :data:`NO_CUDA_REASON`.
For a present device, :func:`setting_for` gives the :class:`DeviceSetting`
sent to the runner with the case: the ONNX Runtime providers (with
``device_id``) and the device string the framework adapter binds its
reference to.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from .errors import HarnessError

NO_CUDA_REASON = "no CUDA device here"
FALLBACK_MESSAGE = "ONNX Runtime fell back to CPU"

_DEVICE = re.compile(r"^(cpu|cuda:(\d+))$")
_GPU_LINE = re.compile(r"^GPU\s+(\d+):", re.MULTILINE)


class DeviceError(HarnessError, ValueError):
    """A ``--devices`` value that names no device."""


def parse_devices(text: str) -> tuple[str, ...]:
    """``'cpu, cuda:0'`` -> ``('cpu', 'cuda:0')``; ``cuda`` means ``cuda:0``; order kept, repeats dropped."""
    out: list[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name in ("cuda", "gpu"):
            name = "cuda:0"
        elif name.startswith("gpu:"):
            name = "cuda:" + name[4:]
        if not _DEVICE.match(name):
            raise DeviceError(f"unknown device {part.strip()!r} (use cpu or cuda:N, comma-separated)")
        if name not in out:
            out.append(name)
    if not out:
        raise DeviceError("--devices names no device")
    return tuple(out)


def gpu_count(smi_output: str | None = None) -> int:
    """How many GPUs ``nvidia-smi -L`` lists (0 when it is absent or fails)."""
    if smi_output is None:
        exe = shutil.which("nvidia-smi")
        if exe is None:
            return 0
        try:
            smi_output = subprocess.run([exe, "-L"], capture_output=True, text=True,
                                        timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return 0
    return len(_GPU_LINE.findall(smi_output or ""))


def ort_providers() -> tuple[str, ...]:
    """The execution providers the installed onnxruntime offers."""
    import onnxruntime

    return tuple(onnxruntime.get_available_providers())


def detect(providers: tuple[str, ...] | None = None, n_gpus: int | None = None) -> tuple[str, ...]:
    """The devices present: ``cpu`` plus ``cuda:N`` per GPU usable by ORT's CUDA provider."""
    providers = ort_providers() if providers is None else tuple(providers)
    if "CUDAExecutionProvider" not in providers:
        return ("cpu",)
    n = gpu_count() if n_gpus is None else n_gpus
    return ("cpu",) + tuple(f"cuda:{i}" for i in range(n))


@dataclass(frozen=True)
class DeviceSetting:
    """What the runner needs to run one case on its device (plain data, sent over the pipe)."""

    device: str = "cpu"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    provider_options: tuple[dict, ...] = field(default=({},))

    def to_dict(self) -> dict:
        """Plain dict for the runner pipe."""
        return {"device": self.device, "providers": list(self.providers),
                "provider_options": [dict(o) for o in self.provider_options]}

    @classmethod
    def from_dict(cls, d: dict | None) -> "DeviceSetting":
        """Inverse of :meth:`to_dict`; ``None`` is the CPU setting."""
        if not d:
            return cls()
        return cls(d.get("device", "cpu"), tuple(d["providers"]),
                   tuple(d.get("provider_options") or [{}] * len(d["providers"])))

    @property
    def is_gpu(self) -> bool:
        """True for ``cuda:N``."""
        return self.device.startswith("cuda")


def device_index(device: str) -> int:
    """``'cuda:1'`` -> 1 (``cpu`` -> 0)."""
    m = _DEVICE.match(device)
    return int(m.group(2)) if m and m.group(2) else 0


def setting_for(device: str, providers: tuple[str, ...]) -> DeviceSetting:
    """The ORT providers for ``device``, given the providers the installed onnxruntime offers.

    ``cuda:N`` asks for TensorRT (when offered), then CUDA, both on ``device_id`` N,
    then CPU. The CUDA provider is asked for even when not offered, so that a
    session which lands on CPU is caught as a fallback, not silently passed.
    """
    if not device.startswith("cuda"):
        return DeviceSetting()
    n = device_index(device)
    names, opts = [], []
    if "TensorrtExecutionProvider" in providers:
        names.append("TensorrtExecutionProvider")
        opts.append({"device_id": n})
    names += ["CUDAExecutionProvider", "CPUExecutionProvider"]
    opts += [{"device_id": n}, {}]
    return DeviceSetting(device, tuple(names), tuple(opts))


def skip_reason(device: str, present: tuple[str, ...]) -> str | None:
    """Why a case on ``device`` cannot run here, or None."""
    if device in present:
        return None
    return NO_CUDA_REASON if device.startswith("cuda") else f"device {device} not present"


def is_fallback(setting: DeviceSetting, session_providers: list[str]) -> bool:
    """A GPU case whose ORT session put the CPU provider first did not run on the GPU."""
    return setting.is_gpu and (not session_providers or session_providers[0] == "CPUExecutionProvider")
