"""A user's own model, described by a YAML file kept outside the repository, as a one-entry matrix.

The file names the framework, the model and its inputs::

    framework: torch                 # paddle, torch, tensorflow, oneflow, or onnx (a saved .onnx file)
    name: my_net                     # optional: the model's name in ids and reports (default: the file's stem)
    factory: my_nets:build           # module:function returning the model (its module is looked up
    factory_kwargs: {classes: 10}    #   beside this file first), called with factory_kwargs;
    weights: my_net.pth              #   optional weights: .pdparams, a .pth state dict, .h5/.keras
                                     #   weights, a OneFlow weight folder
    # or, instead of a factory:
    saved: my_net.h5                 # a saved model: a Paddle inference folder (inference.json +
                                     #   inference.pdiparams), a Keras .h5/.keras file, or an .onnx
                                     #   file (framework: onnx; checked on the runtimes against the
                                     #   ONNX reference evaluator, at the file's own opset)
    inputs:                          # shapes and dtypes (drawn, seeded), or arrays from files
      - {shape: [2, 3, 32, 32], dtype: float32}
      - {file: x.npy}                # or {file: inputs.npz, key: x}
    exporters: [torchscript]         # optional: default every exporter of the framework
    opsets: "17~18"                  # optional: default the models suite's range of the framework
    tolerance: model-abs-rel         # optional: a rule of cases/tolerances.yaml
    classifier: true                 # optional: also record top-1 agreement
    batches: [1, 3]                  # optional (drawn inputs only): batch sizes run from one export

Relative paths are relative to the file. :func:`load` checks all of it without
importing any framework and returns a :class:`UserModel`; every problem is one
:class:`~harness.spec.yamlsrc.MatrixError` naming the file, the line and the field.
:meth:`UserModel.matrix` is the matrix the run uses (the same exporters x
opsets x runtimes x passes, the same records and reports as the built-in models).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .matrix import parse_range, validate
from .yamlsrc import MatrixError, SourcedDoc, load_yaml

#: exporters and the declared opset range of a user model per framework (those of cases/models/)
FRAMEWORKS = {
    "paddle": (("dygraph", "cli"), "13~14"),
    "torch": (("torchscript", "dynamo"), "17~18"),
    "tensorflow": (("keras", "function"), "14~15"),
    "oneflow": (("graph",), "13~14"),
    # an ONNX file: checked on the runtimes only, at its own opset (harness/frameworks/onnx.py)
    "onnx": (("file",), ""),
}
#: exporters a saved model (no Python factory) can go through
SAVED_EXPORTERS = {"paddle": ("cli",), "tensorflow": ("keras", "function"), "onnx": ("file",)}
NATIVE_OPSETS = {"torch": {"dynamo": 18}}
WEIGHT_KINDS = {"paddle": (".pdparams",), "torch": (".pth", ".pt"), "tensorflow": (".h5", ".keras", ".weights.h5"),
                "oneflow": ("",), "onnx": ()}
DEFAULT_BATCHES = [1, 3]
#: the builder every framework registers for a user model (``harness/builders/<framework>_models.py``)
BUILDER = "user_model"

_DTYPE = {"enum": ["float16", "float32", "float64", "int32", "int64", "bool"]}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["framework", "inputs"],
    "properties": {
        "framework": {"enum": sorted(FRAMEWORKS)},
        "name": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "factory": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"},
        "factory_kwargs": {"type": "object"},
        "weights": {"type": "string", "minLength": 1},
        "saved": {"type": "string", "minLength": 1},
        "inputs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
                "dtype": _DTYPE,
                "low": {"type": "number"}, "high": {"type": "number"},
                "dynamic": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "file": {"type": "string", "minLength": 1},
                "key": {"type": "string", "minLength": 1},
            }}},
        "exporters": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "opsets": {"type": "string"},
        "tolerance": {"type": "string"},
        "classifier": {"type": "boolean"},
        "batches": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
    },
}


@dataclass
class UserModel:
    """A checked user-model file: everything the one-entry matrix needs (paths absolute)."""

    path: Path
    framework: str
    name: str
    exporters: list[str]
    opsets: str
    kwargs: dict
    inputs: list[dict]
    batches: list[int] | None
    tolerance: str
    classifier: bool
    #: line of each top-level field (for errors found later, e.g. by the probe)
    lines: dict

    def error(self, field: str, message: str) -> MatrixError:
        """A one-line error about ``field`` of the file."""
        return MatrixError(self.path, self.lines.get(field.split("[")[0].split(".")[0]), field, message)

    def matrix(self) -> dict:
        """The one-entry matrix of this model (``cases/models/`` conventions: whole model, checked reference)."""
        entry = {"kernel": self.name, "table": {"opsets": self.opsets, "note": f"user model {self.path.name}"},
                 "api": self.kwargs.get("factory") or self.kwargs.get("saved"), "builder": BUILDER,
                 "kwargs": self.kwargs, "inputs": self.inputs, "shared_key": self.name}
        defaults = {"dtypes": ["float32"], "tolerance": self.tolerance, "whole_model": True,
                    "check_reference": True, "classifier": self.classifier, "blame_budget_s": 120}
        if self.batches:
            defaults["batches"] = self.batches
        out = {"framework": self.framework, "exporters": self.exporters, "defaults": defaults, "entries": [entry]}
        native = {e: o for e, o in NATIVE_OPSETS.get(self.framework, {}).items() if e in self.exporters}
        if native:
            out["native_opsets"] = native
        return out


def _file(doc: SourcedDoc, at: tuple, field: str, text: str, root: Path, what: str) -> Path:
    path = (root / text).resolve()
    if not path.exists():
        raise MatrixError(doc.path, doc.line_of(at), field, f"{what} {text!r} does not exist ({path})")
    return path


def load(path: str | Path) -> UserModel:
    """Read and check a user-model file; raise :class:`MatrixError` at the first problem."""
    path = Path(path).resolve()
    if not path.is_file():
        raise MatrixError(path, None, "<file>", "no such file")
    doc = load_yaml(path)
    validate(doc, SCHEMA)
    data, root = doc.data, path.parent
    fw = data["framework"]
    lines = {k: doc.line_of((k,)) for k in data}
    if ("factory" in data) == ("saved" in data):
        raise MatrixError(path, doc.line_of(()), "<file>", "give exactly one of 'factory' (module:function) "
                                                            "or 'saved' (a saved model)")
    kwargs: dict = {"root": str(root)}
    if fw == "onnx" and "factory" in data:
        raise MatrixError(path, lines["factory"], "factory", "an onnx model is a saved .onnx file: give 'saved'")
    own_opset = None
    if "factory" in data:
        kwargs["factory"] = data["factory"]
        kwargs["factory_kwargs"] = dict(data.get("factory_kwargs") or {})
        if "weights" in data:
            weights = _file(doc, ("weights",), "weights", data["weights"], root, "weights file")
            kinds = WEIGHT_KINDS[fw]
            if fw == "oneflow" and not weights.is_dir() or fw != "oneflow" and not weights.name.endswith(kinds):
                want = "a folder (oneflow.save)" if fw == "oneflow" else " or ".join(kinds)
                raise MatrixError(path, lines["weights"], "weights",
                                  f"{fw} weights must be {want}, not {weights.name!r}")
            kwargs["weights"] = str(weights)
    else:
        for key in ("weights", "factory_kwargs"):
            if key in data:
                raise MatrixError(path, lines[key], key, "only with 'factory' (a saved model carries its weights)")
        saved = _file(doc, ("saved",), "saved", data["saved"], root, "saved model")
        kwargs["saved"] = str(saved)
        own_opset = _check_saved(path, lines["saved"], fw, saved)
    allowed = SAVED_EXPORTERS.get(fw, ()) if "saved" in data else FRAMEWORKS[fw][0]
    exporters = list(data.get("exporters") or allowed)
    unknown = [e for e in exporters if e not in allowed]
    if unknown:
        raise MatrixError(path, lines.get("exporters"), "exporters",
                          f"unknown exporter {unknown[0]!r} for this model (known: {', '.join(allowed)})")
    opsets = data.get("opsets", FRAMEWORKS[fw][1])
    if own_opset is not None:
        if "opsets" in data and opsets.replace(" ", "") != f"{own_opset}~{own_opset}":
            raise MatrixError(path, lines["opsets"], "opsets", f"an ONNX file runs at its own opset "
                                                               f"({own_opset}); leave 'opsets' out")
        opsets = f"{own_opset}~{own_opset}"
    parse_range(opsets, doc, ("opsets",))
    inputs, from_files = _inputs(doc, data["inputs"], root)
    batches = data.get("batches")
    if batches and from_files:
        raise MatrixError(path, lines["batches"], "batches", "inputs read from files run as they are: no batches")
    if batches is None and not from_files:
        batches = DEFAULT_BATCHES
    name = data.get("name") or re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or "user_model"
    return UserModel(path, fw, name, exporters, opsets, kwargs, inputs, batches,
                     data.get("tolerance", "model-abs-rel"), bool(data.get("classifier", False)), lines)


def _check_saved(path: Path, line: int | None, fw: str, saved: Path) -> int | None:
    """Check a saved model's form; for an ONNX file, return its default-domain opset."""
    if fw == "onnx":
        import onnx

        try:
            model = onnx.load(str(saved), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same usage error
            raise MatrixError(path, line, "saved", f"not a readable ONNX model: {type(exc).__name__}: {exc}") from None
        found = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
        if not found:
            raise MatrixError(path, line, "saved", "the ONNX model imports no default-domain opset")
        return found[0]
    if fw == "paddle":
        missing = [f for f in ("inference.json", "inference.pdiparams") if not (saved / f).is_file()]
        if not saved.is_dir() or missing:
            lacks = ", ".join(missing) or "them"
            raise MatrixError(path, line, "saved", f"a Paddle inference folder must hold inference.json and "
                                                   f"inference.pdiparams ({saved} lacks {lacks})")
    elif fw == "tensorflow":
        if not saved.name.endswith((".h5", ".keras")):
            raise MatrixError(path, line, "saved", f"a saved Keras model is a .h5 or .keras file, not {saved.name!r}")
    else:
        raise MatrixError(path, line, "saved", f"no saved-model form for {fw} (give a factory instead)")
    return None


def _inputs(doc: SourcedDoc, given: list, root: Path) -> tuple[list[dict], bool]:
    """The input specs (shapes of file inputs read from the files), and whether any comes from a file."""
    out, from_files = [], False
    for i, inp in enumerate(given):
        at, field = ("inputs", i), f"inputs[{i}]"
        if ("file" in inp) == ("shape" in inp):
            raise MatrixError(doc.path, doc.line_of(at), field, "give exactly one of 'shape' or 'file'")
        spec = {k: v for k, v in inp.items() if k in ("shape", "dtype", "low", "high", "dynamic")}
        if "file" in inp:
            from_files = True
            source = _file(doc, at + ("file",), f"{field}.file", inp["file"], root, "input file")
            try:
                arrays = np.load(source, allow_pickle=False)
                if isinstance(arrays, np.lib.npyio.NpzFile):
                    if "key" not in inp:
                        raise MatrixError(doc.path, doc.line_of(at), f"{field}.key",
                                          f"a .npz holds several arrays ({', '.join(arrays.files)}): name one")
                    if inp["key"] not in arrays.files:
                        raise MatrixError(doc.path, doc.line_of(at + ("key",)), f"{field}.key",
                                          f"{source.name} has no array {inp['key']!r} ({', '.join(arrays.files)})")
                    arr = arrays[inp["key"]]
                else:
                    arr = arrays
            except (OSError, ValueError) as exc:
                raise MatrixError(doc.path, doc.line_of(at + ("file",)), f"{field}.file",
                                  f"not a .npy/.npz array file: {exc}") from None
            if arr.ndim == 0 or arr.dtype.name not in _DTYPE["enum"]:
                raise MatrixError(doc.path, doc.line_of(at + ("file",)), f"{field}.file",
                                  f"need an array of rank >= 1 and dtype {', '.join(_DTYPE['enum'])}, "
                                  f"got {arr.dtype}{list(arr.shape)}")
            spec.update(shape=list(arr.shape), dtype=arr.dtype.name, file=str(source))
            if "key" in inp:
                spec["key"] = inp["key"]
        elif "key" in inp:
            raise MatrixError(doc.path, doc.line_of(at + ("key",)), f"{field}.key", "only with 'file'")
        out.append(spec)
    return out, from_files
