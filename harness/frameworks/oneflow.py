"""OneFlow adapter and its export path (imported only by its own runner, Python 3.10).

* ``graph``: the module is wrapped in an ``oneflow.nn.Graph``, compiled on the
  case's example inputs, and converted with
  ``oneflow_onnx.oneflow2onnx.util.export_onnx_model(graph, onnx_model_path=...,
  opset=N)`` (which also runs onnx-simplifier on the result). The converter
  writes the shapes the graph was compiled with: the model is static, so
  OneFlow entries check the example shapes only, unless they list
  ``batches:`` (the whole models): then the export asks for
  ``dynamic_batch_size=True``, as seed 002 does, and every batch runs.

``oneflow==0.9.0`` is a CUDA build: before ``import oneflow`` the adapter loads
the cuDNN and cuBLAS libraries that the ``nvidia-*-cu11`` wheels put in the
environment's site-packages (``ctypes``, ``RTLD_GLOBAL``), so nobody has to set
``LD_LIBRARY_PATH``. OneFlow is imported lazily, in the forked server, never in
the runner master (see :func:`flow`); so this adapter has no ``warm_up``. Runs
in an environment of its own (see :mod:`harness.isolation.environments`).
"""

from __future__ import annotations

import contextlib
import functools
import ctypes
import io
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from harness.core import calls, registry

#: pip distributions a standalone repro of a OneFlow case needs besides numpy, onnx and
#: onnxruntime (read from this file's source by :mod:`harness.core.repro`, never imported there);
#: the replay runs on Python 3.10, the only one oneflow 0.9.0 has wheels for.
REPLAY_REQUIRES = ("oneflow", "oneflow-onnx", "nvidia-cudnn-cu11", "nvidia-cublas-cu11")

#: wheel folder -> libraries, in dependency order (each needs the ones before it)
_CUDA_LIBS = (("cublas", ("libcublasLt.so.11", "libcublas.so.11")),
              ("cuda_nvrtc", ("libnvrtc.so.11.2",)),
              ("cudnn", ("libcudnn_ops_infer.so.8", "libcudnn_ops_train.so.8", "libcudnn_cnn_infer.so.8",
                         "libcudnn_cnn_train.so.8", "libcudnn_adv_infer.so.8", "libcudnn_adv_train.so.8",
                         "libcudnn.so.8")))


def preload_cuda_libraries() -> list[str]:
    """Load the nvidia wheels' cuBLAS/cuDNN libraries globally; return the paths loaded."""
    try:
        import nvidia  # namespace package of the nvidia-*-cu11 wheels
    except ImportError:
        return []
    loaded = []
    for root in map(Path, nvidia.__path__):
        for folder, names in _CUDA_LIBS:
            for name in names:
                path = root / folder / "lib" / name
                if path.exists():
                    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                    loaded.append(str(path))
    return loaded


@functools.lru_cache(maxsize=None)
def flow():
    """``import oneflow`` (after the CUDA libraries), once per process, on first use.

    Never at module import: the runner master imports this module and forks
    sessions from it, and an ``nn.Graph`` compiled in a process forked after
    ``import oneflow`` hangs in ``finish_complie_and_init_runtime`` (measured
    with 0.9.0). Each forked server pays the import itself (~0.5 s).
    """
    global _LOADED
    _LOADED = preload_cuda_libraries()
    import oneflow

    logging.getLogger("oneflow_onnx").setLevel(logging.ERROR)
    return oneflow


_LOADED: list[str] = []


@functools.lru_cache(maxsize=None)
def _classes():
    """The Module that wraps a ``call:`` and the ``nn.Graph`` the converter reads (need oneflow)."""
    nn = flow().nn

    class Call(nn.Module):
        """A ``call:`` (:class:`harness.core.calls.Call`) as a Module (any arity)."""

        def __init__(self, call):
            super().__init__()
            self.call = call

        def forward(self, *xs):
            return self.call(*xs)

    class Graph(nn.Graph):
        """Calls the module on the inputs: what ``export_onnx_model`` converts."""

        def __init__(self, module):
            super().__init__()
            self.m = module

        def build(self, *xs):
            return self.m(*xs)

    return Call, Graph


def flatten(out) -> list[np.ndarray]:
    """Framework outputs (tensor, tuple, list, nested) -> list of numpy arrays."""
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in flatten(o)]
    if isinstance(out, flow().Tensor):
        return [out.numpy()]
    return [np.asarray(out)]


def _tensors(inputs) -> list:
    return [flow().tensor(np.ascontiguousarray(x)) for x in inputs]


@registry.register_framework
class OneFlowFramework(registry.FrameworkAdapter):
    """Builds OneFlow modules from case specs (eval mode, seeded weights) and runs them eagerly on CPU."""

    name = "oneflow"
    call_aliases = {"flow": "oneflow"}

    #: OneFlow's own words for "no kernel for this dtype on this device" (see harness.core.dtypes): its
    #: dispatcher names the op, the device and every tensor's data type, over several lines
    dtype_unsupported = (
        r"(?s)Cannot find the kernel matching Current OperatorConf\..*DeviceType_Name: kCPU"
        r".*DataType_Name of \w+: k(Float16|Double|Int8|Int32|Int64|UInt8|Char|Bool)\b",
    )

    def versions(self) -> dict:
        """Package versions the environment probe reports."""
        from importlib import metadata

        return {"oneflow": flow().__version__, "oneflow_onnx": metadata.version("oneflow-onnx"),
                "cuda_libraries_preloaded": str(len(_LOADED))}

    def build(self, spec: dict, seed: int):
        flow().manual_seed(seed)
        np.random.seed(seed % (2**32))
        if spec.get("call"):
            flow()  # imported in the server, never in the runner master (see the module docstring)
            module = _classes()[0](calls.Call.of(spec, self.call_aliases))
        else:
            module = registry.BUILDERS[("oneflow", spec["builder"])](spec)
        module.eval()
        return _at_dtype(module, spec.get("dtype"))

    def reference(self, model, inputs):
        with flow().no_grad():
            return flatten(model(*_tensors(inputs)))


def _at_dtype(module, dtype: str | None):
    """Cast a module's floating weights and buffers to the case's floating dtype.

    Weights are drawn in float32 (the same seeded values at every dtype) and
    rounded once; at an integer or bool dtype they stay as drawn (an op with
    weights takes floating inputs only).
    """
    if dtype in ("float16", "float64"):
        module.to(getattr(flow(), dtype))
    return module


def _compiled(module, xs: list, weights: str, cache: dict, dynamic_batch: bool):
    """The ``nn.Graph`` of ``module`` compiled on ``xs``, and its weights saved in ``weights``.

    Neither depends on the opset, and ``export_onnx_model`` only reads them (the
    graph's ``_full_graph_proto`` and the weight folder), so they are made once per
    model and batch mode and kept in the model's ``cache``; each opset then pays only
    the conversion (``tests/test_oneflow_dtypes.py`` checks that a reused graph
    converts to the model a fresh one does).
    """
    key = ("oneflow_graph", dynamic_batch)
    if key not in cache:
        graph = _classes()[1](module)
        graph(*xs)  # compile on the example inputs
        shutil.rmtree(weights, ignore_errors=True)
        flow().save(graph.state_dict(), weights)
        cache[key] = (graph, weights)
    graph, weights = cache[key]
    if not os.path.isdir(weights):  # the folder went (a cleaned work folder): save them again
        flow().save(graph.state_dict(), weights)
    return graph, weights


def _export(module, xs: list, opset: int, path: str, cache: dict, weights: str,
            dynamic_batch: bool = False) -> str:
    """Convert ``module`` at ``opset`` into ``path``, with the graph compiled and the weights saved
    (into ``weights``) for an earlier opset of the same model in ``cache`` (:func:`_compiled`)."""
    from oneflow_onnx.oneflow2onnx.util import export_onnx_model

    graph, weights = _compiled(module, xs, weights, cache, dynamic_batch)
    with contextlib.redirect_stdout(io.StringIO()):
        export_onnx_model(graph, opset=opset, flow_weight_dir=weights, onnx_model_path=path,
                          dynamic_batch_size=dynamic_batch)
    return path


@registry.register_exporter("oneflow")
class GraphExporter:
    """``nn.Graph`` + ``oneflow_onnx``'s ``export_onnx_model`` at exactly the requested opset."""

    name = "graph"

    def export(self, model, case, workdir, cache):
        from harness.core.inputs import make_inputs

        path = os.path.join(workdir, case.id + ".onnx")
        if os.path.exists(path):
            os.remove(path)
        xs = make_inputs(case.spec["inputs"], case.seed)
        # a batch other than the example's needs the converter's dynamic batch (a static export otherwise)
        dynamic = any(b != xs[0].shape[0] for b in case.spec.get("batches") or ()) if xs[0].ndim else False
        weights = os.path.join(workdir, f"{case.model_key}.weights" + ("-dynamic" if dynamic else ""))
        return _export(model, _tensors(xs), case.opset, path, cache, weights, dynamic_batch=dynamic)
