"""ncnn (``ncnn==1.0.20261020``) through pnnx (``pnnx==20261020``, ``--no-deps``: its Python part wants torch).

Runs in the ``runtimes`` environment behind a runtime server (see
:mod:`harness.runtimes._remote`). The prepare copies the ONNX file into a
private folder (pnnx writes ``<model>.pnnxsim.onnx`` and more beside its
input), runs the pnnx binary (``inputshape=... fp16=0``) and loads the
``.ncnn.param``/``.ncnn.bin`` it writes into an ``ncnn.Net`` with fp16 and bf16
storage and arithmetic off: the harness compares ncnn at float32.

What the adapter undoes, never the tolerance: pnnx renames the blobs to
``in0``.../``out0``... (in the model's order) and drops the batch axis (the
``batch_index`` its generated ``<model>_ncnn.py`` names): the model is
converted at batch 1 (at its own batch size where the model fixes it) and each
sample runs alone, the outputs stacked again on that axis.
``ncnn.Mat(array)`` borrows the numpy buffer, so inputs are cloned.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

from . import Crashed, Unsupported, register_runtime
from ._remote import RemoteRuntime

#: what pnnx/ncnn print when they lack an operator (pnnx keeps it as an unconvertible ``pnnx.*``/ONNX layer)
UNSUPPORTED_MARKERS = ("layer not exists", "not supported", "unsupported", "ignore ", "not implemented")

_TYPES = {"float32": "f32", "float64": "f64", "float16": "f16", "int32": "i32", "int64": "i64", "int8": "i8",
          "uint8": "u8", "bool": "u8"}


def _pnnx() -> str:
    import importlib.util

    spec = importlib.util.find_spec("pnnx")
    exe = os.path.join(os.path.dirname(spec.origin), "pnnx") if spec and spec.origin else None
    if not exe or not os.path.exists(exe):
        raise RuntimeError("ncnn: the pnnx binary is not installed in this environment")
    return exe


class NcnnSession:
    """A model converted by pnnx and loaded into an ``ncnn.Net`` (fp16/bf16 off)."""

    provider = "ncnn:cpu-fp32"

    def __init__(self, path: str, shapes, dtypes, workdir: str):
        import ncnn

        self.ncnn = ncnn
        self.dir = tempfile.mkdtemp(prefix="ncnn-", dir=workdir)
        model = os.path.join(self.dir, "m.onnx")
        shutil.copyfile(path, model)
        static = _static_batch(path)
        one = ",".join(f"[{','.join([str(s[0] if fixed else 1)] + [str(d) for d in s[1:]]) if s else ''}]"
                       f"{_TYPES.get(np.dtype(t).name, 'f32')}" for s, t, fixed in zip(shapes, dtypes, static))
        proc = subprocess.run([_pnnx(), model, f"inputshape={one}", "fp16=0", "optlevel=2", "device=cpu"],
                              cwd=self.dir, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        text = (proc.stdout + proc.stderr)[-3000:]
        param = os.path.join(self.dir, "m.ncnn.param")
        if proc.returncode < 0:  # the converter died of a signal: a native crash of this runtime's line
            import signal

            lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
            raise Crashed(f"ncnn: pnnx killed by {signal.Signals(-proc.returncode).name}: "
                          + " | ".join(lines[-3:])[-600:])
        if proc.returncode != 0 or not os.path.exists(param):
            lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
            raise RuntimeError(f"ncnn: pnnx exited {proc.returncode}: " + " | ".join(lines[-6:]))
        leftover = _unconverted(param)
        if leftover:
            raise Unsupported(f"ncnn: pnnx left layers ncnn cannot run: {', '.join(leftover)}")
        self.in_batch, self.out_batch = _batch_indices(os.path.join(self.dir, "m_ncnn.py"))
        self.net = ncnn.Net()
        for flag in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage",
                     "use_bf16_packed"):
            if hasattr(self.net.opt, flag):
                setattr(self.net.opt, flag, False)
        self.net.opt.num_threads = 1
        if self.net.load_param(param) != 0 or self.net.load_model(os.path.join(self.dir, "m.ncnn.bin")) != 0:
            missing = _layers_not_built(ncnn, param)
            if missing:
                raise Unsupported(f"ncnn: this ncnn build has no layer {', '.join(missing)} (pnnx wrote it)")
            raise RuntimeError("ncnn: load_param/load_model failed on pnnx's output")
        self.n_out = len(self.out_batch)

    def _once(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        with self.net.create_extractor() as ex:
            for i, x in enumerate(xs):
                b = self.in_batch[i] if i < len(self.in_batch) else None
                mat = self.ncnn.Mat(x, batch_index=b) if b is not None else self.ncnn.Mat(x)
                ex.input(f"in{i}", mat.clone())
            outs = []
            for k in range(self.n_out):
                rc, mat = ex.extract(f"out{k}")
                if rc != 0:
                    raise RuntimeError(f"ncnn: extract out{k} returned {rc}")
                b = self.out_batch[k]
                outs.append(np.array(mat.numpy(batch_index=b) if b is not None else mat.numpy()))
            return outs

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Each sample alone (pnnx converted at batch 1), stacked again on each output's batch axis."""
        batch = inputs[0].shape[0] if inputs and inputs[0].ndim else 1
        if batch == 1 or any(b != 0 for b in self.in_batch if b is not None) or not self.in_batch:
            return self._once(list(inputs))
        parts = [self._once([x[n:n + 1] if x.ndim and x.shape[0] == batch else x for x in inputs])
                 for n in range(batch)]
        # an output without a batch index in pnnx's script keeps the sample's leading axis of 1 (flatten)
        return [np.concatenate([p[k] for p in parts], axis=self.out_batch[k] or 0) for k in range(self.n_out)]


def _static_batch(path: str) -> list[bool]:
    """Per graph input: whether the model fixes its first axis (pnnx must then trace at that size)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    found = []
    for i in model.graph.input:
        if i.name in inits:
            continue
        dims = i.type.tensor_type.shape.dim
        found.append(bool(dims) and dims[0].HasField("dim_value"))
    return found


def _batch_indices(script: str) -> tuple[list, list]:
    """The ``batch_index`` of each input and output that pnnx's generated ``_ncnn.py`` names (None: none)."""
    text = open(script, encoding="utf-8").read() if os.path.exists(script) else ""
    ins = {int(m.group(1)): (int(m.group(2)) if m.group(2) is not None else None) for m in re.finditer(
        r'ex\.input\("in(\d+)", ncnn\.Mat\(in\d+\.numpy\(\)(?:, batch_index=(\d+))?\)', text)}
    outs = {int(m.group(1)): (int(m.group(2)) if m.group(2) is not None else None) for m in re.finditer(
        r'out(\d+)\.numpy\((?:batch_index=(\d+))?\)', text)}
    return [ins.get(i) for i in range(len(ins))], [outs.get(i) for i in range(len(outs))]


def _layers_not_built(ncnn, param: str) -> list[str]:
    """Layer types of the ``.param`` that this ncnn build cannot create (``create_layer`` gives None)."""
    with open(param, encoding="utf-8") as f:
        kinds = {line.split()[0] for line in f.read().splitlines()[2:] if line.split()}
    return sorted(k for k in kinds if ncnn.create_layer(k) is None)


def _unconverted(param: str) -> list[str]:
    """Layer types of the ``.param`` that are no ncnn layer (pnnx keeps an op it cannot map under its own name)."""
    found = []
    with open(param, encoding="utf-8") as f:
        for line in f.read().splitlines()[2:]:
            kind = line.split()[0] if line.split() else ""
            if kind.startswith(("pnnx.", "aten::", "torch.", "F.", "nn.", "Tensor.")) or "." in kind:
                found.append(kind)
    return sorted(set(found))


#: the packages whose versions the environment probe records
DISTRIBUTIONS = ("ncnn", "pnnx",)


def load() -> None:
    """Import the native library (in the runtime server, before the first prepare is timed)."""
    import ncnn  # noqa: F401


def native(path: str, shapes, dtypes, workdir: str) -> NcnnSession:
    """Convert with pnnx and load into ncnn (in the runtime server)."""
    return NcnnSession(path, shapes, dtypes, workdir)


@register_runtime
class Ncnn(RemoteRuntime):
    """ncnn on CPU at float32, in environment ``runtimes``."""

    name = "ncnn"
    environment = "runtimes"
    provider = "ncnn:cpu-fp32"
