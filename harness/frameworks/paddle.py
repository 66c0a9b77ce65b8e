"""Paddle adapter and its two export paths (imported only by case runners).

* ``dygraph``: ``paddle.onnx.export(layer, prefix, input_spec=[...], opset_version=N)``,
  the dynamic-graph path of the Paddle docs, with its default opset auto-upgrade;
* ``static``: ``paddle.jit.save`` once per op variant, then ``paddle2onnx.export``
  on the saved model per opset with ``auto_upgrade_opset=False`` (the
  command-line workflow, asking for exactly the opset requested).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import weakref

import numpy as np
import paddle
import paddle2onnx
from paddle.static import InputSpec

from harness.core import calls, registry

#: pip distributions a standalone repro of a Paddle case needs besides numpy, onnx and
#: onnxruntime (read from this file's source by :mod:`harness.core.repro`, never imported there):
#: paddle2onnx folds constants with polygraphy, which otherwise pip-installs onnx_graphsurgeon
#: at run time.
REPLAY_REQUIRES = ("paddlepaddle", "paddle2onnx", "polygraphy", "onnx-graphsurgeon")

paddle.set_device("cpu")
logging.getLogger("paddle2onnx").setLevel(logging.ERROR)


class _Call(paddle.nn.Layer):
    """A ``call:`` (:class:`harness.core.calls.Call`) as a Layer; subclasses fix the arity for ``InputSpec``."""

    def __init__(self, call: calls.Call):
        super().__init__()
        self.call = call

    def _apply(self, *xs):
        return self.call(*xs)


class _Call1(_Call):
    def forward(self, x):
        return self._apply(x)


class _Call2(_Call):
    def forward(self, x, y):
        return self._apply(x, y)


class _Call3(_Call):
    def forward(self, x, y, z):
        return self._apply(x, y, z)


class _Call4(_Call):
    def forward(self, x, y, z, w):
        return self._apply(x, y, z, w)


_ARITY = {1: _Call1, 2: _Call2, 3: _Call3, 4: _Call4}


def flatten(out) -> list[np.ndarray]:
    """Framework outputs (tensor, tuple, list, nested) -> list of numpy arrays."""
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in flatten(o)]
    if isinstance(out, paddle.Tensor):
        return [out.numpy()]
    return [np.asarray(out)]


@registry.register_framework
class PaddleFramework(registry.FrameworkAdapter):
    """Builds Paddle layers from case specs and runs them in dynamic-graph mode."""

    name = "paddle"

    #: Paddle's own words for "no kernel for this dtype on this device" (see harness.core.dtypes)
    dtype_unsupported = (
        r"The kernel with key \(.*\b(float16|float64|int32|int64|bool)\) of kernel `\w+` is not registered",
        r"kernel `\w+` is not registered and is not supported",
        r"data type of '\w+' in \w+ must be .*, but received (float16|float64|int32|int64|bool)",
    )

    def set_device(self, device: str) -> None:
        """Bind models and the reference to ``cpu`` or ``cuda:N`` (Paddle's ``gpu:N``)."""
        paddle.set_device("cpu" if device == "cpu" else "gpu:" + device.split(":", 1)[1])

    def warm_up(self, workdir: str) -> None:
        """Pay the exporters' first-call costs once, in the runner zygote, before it forks.

        The first export of a process lazily imports polygraphy's constant
        folding (which pulls in onnxruntime.tools and torch) and initialises
        Paddle's program saving: about 2 s. Done here, every forked server,
        including each one forked after a crash, starts warm.
        """
        layer = _Call1(calls.Call(paddle.abs))
        layer.eval()
        spec = [InputSpec([None, 2], "float32", "x0")]
        paddle.onnx.export(layer, os.path.join(workdir, "warm"), input_spec=spec, opset_version=13)
        saved = os.path.join(workdir, "warm.static", "model")
        paddle.jit.save(layer, saved, input_spec=spec)
        paddle2onnx.export(saved + ".json", saved + ".pdiparams", save_file=os.path.join(workdir, "warm2.onnx"),
                           opset_version=13, auto_upgrade_opset=False)

    def build(self, spec: dict, seed: int):
        paddle.seed(seed)
        np.random.seed(seed % (2**32))
        if spec.get("call"):
            n = len(spec["inputs"])
            layer = _ARITY[n](calls.Call.of(spec, self.call_aliases))
        else:
            layer = registry.BUILDERS[("paddle", spec["builder"])](spec)
        if isinstance(layer, InferenceModel):
            return layer
        layer.eval()
        if spec.get("dtype") in ("float16", "float64") and layer.parameters():
            # weights drawn in float32 (the same seeded values at every dtype), rounded once
            layer.to(dtype=spec["dtype"])
        return layer

    def reference(self, model, inputs):
        if isinstance(model, InferenceModel):
            return model.run(inputs)
        with paddle.no_grad():
            return flatten(model(*[paddle.to_tensor(x) for x in inputs]))


class InferenceModel:
    """An inference model folder (``inference.json`` + ``inference.pdiparams``) run by Paddle Inference.

    What a deployment starts from (seed 000): the reference is the
    ``paddle.inference`` predictor on the folder (CPU, one thread), not a
    dygraph layer. The folder is removed with the object.
    """

    FILES = ("inference.json", "inference.pdiparams")

    def __init__(self, folder: str, owned: bool = False):
        self.folder = folder
        self._predictor = None
        if owned:
            weakref.finalize(self, shutil.rmtree, folder, True)

    @classmethod
    def save(cls, layer, spec: dict) -> "InferenceModel":
        """``paddle.jit.save`` ``layer`` (eval mode, the spec's InputSpecs) into a fresh folder."""
        layer.eval()
        folder = tempfile.mkdtemp(prefix="harness-inference-")
        paddle.jit.save(layer, os.path.join(folder, "inference"), input_spec=input_specs_of(spec))
        return cls(folder, owned=True)

    def run(self, inputs) -> list[np.ndarray]:
        """The predictor's outputs on ``inputs`` (numpy arrays, in the folder's input order)."""
        if self._predictor is None:
            config = paddle.inference.Config(*(os.path.join(self.folder, f) for f in self.FILES))
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(1)
            self._predictor = paddle.inference.create_predictor(config)
        p = self._predictor
        for name, x in zip(p.get_input_names(), inputs):
            handle = p.get_input_handle(name)
            handle.reshape(list(x.shape))
            handle.copy_from_cpu(np.ascontiguousarray(x))
        p.run()
        return [p.get_output_handle(n).copy_to_cpu() for n in p.get_output_names()]


def input_specs(case) -> list:
    """InputSpecs with None on the dynamic axes (the batch by default), named x0, x1, ..."""
    return input_specs_of(case.spec)


def input_specs_of(spec: dict) -> list:
    """:func:`input_specs` of a case spec."""
    specs = []
    for i, inp in enumerate(spec["inputs"]):
        shape = [None if ax in inp.get("dynamic", [0]) else d for ax, d in enumerate(inp["shape"])]
        specs.append(InputSpec(shape, inp["dtype"], inp.get("name", f"x{i}")))
    return specs


@registry.register_exporter("paddle")
class DygraphExporter:
    """``paddle.onnx.export`` on the dynamic-graph layer."""

    name = "dygraph"

    def export(self, model, case, workdir, cache):
        prefix = os.path.join(workdir, case.id)
        for ext in (".onnx",):
            if os.path.exists(prefix + ext):
                os.remove(prefix + ext)
        paddle.onnx.export(model, prefix, input_spec=input_specs(case), opset_version=case.opset)
        return prefix + ".onnx"


@registry.register_exporter("paddle")
class StaticExporter:
    """``paddle.jit.save`` once, then ``paddle2onnx.export`` at exactly the requested opset."""

    name = "static"

    def export(self, model, case, workdir, cache):
        saved = cache.get("static_prefix")
        if saved is None:
            saved = os.path.join(workdir, f"{case.model_key}.static", "model")
            paddle.jit.save(model, saved, input_spec=input_specs(case))
            cache["static_prefix"] = saved
        out = os.path.join(workdir, case.id + ".onnx")
        if os.path.exists(out):
            os.remove(out)
        paddle2onnx.export(saved + ".json", saved + ".pdiparams", save_file=out,
                           opset_version=case.opset, auto_upgrade_opset=False)
        return out


@registry.register_exporter("paddle")
class CliExporter:
    """Seed 000's command line on an inference model folder, in a child process::

        paddle2onnx --model_dir DIR --model_filename inference.json --params_filename inference.pdiparams
                    --save_file OUT --opset_version N --enable_onnx_checker True

    The folder is the model's own (:class:`InferenceModel`) or, for a layer, one
    ``paddle.jit.save`` per variant. The command's other options keep their
    defaults, as in the seed (so its opset auto-upgrade is on: a silent upgrade is
    recorded as ``opset-not-honored``). A failing command's last lines are the message.
    """

    name = "cli"

    def export(self, model, case, workdir, cache):
        if isinstance(model, InferenceModel):
            folder = model.folder
        else:
            folder = cache.get("inference_folder")
            if folder is None:
                folder = os.path.join(workdir, f"{case.model_key}.inference")
                paddle.jit.save(model, os.path.join(folder, "inference"), input_spec=input_specs(case))
                cache["inference_folder"] = folder
        out = os.path.join(workdir, case.id + ".onnx")
        if os.path.exists(out):
            os.remove(out)
        cmd = [sys.executable, "-m", "paddle2onnx.command", "--model_dir", folder,
               "--model_filename", InferenceModel.FILES[0], "--params_filename", InferenceModel.FILES[1],
               "--save_file", out, "--opset_version", str(case.opset), "--enable_onnx_checker", "True"]
        # polygraphy must never pip-install anything at run time
        env = {**os.environ, "POLYGRAPHY_AUTOINSTALL_DEPS": "0", "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0 or not os.path.exists(out):
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise RuntimeError(f"paddle2onnx exited with {done.returncode}: {tail}")
        return out
