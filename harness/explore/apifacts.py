"""What a framework's own API says about the parameters of a ``call:`` target (for derived forms).

``python -m harness.explore.apifacts FRAMEWORK TARGET...`` runs in the framework's own
environment (standard library and the framework only), resolves each target through the
framework adapter's ``call_aliases`` and prints one JSON object: the framework's version
and, per target, per documented parameter, what its signature and docstring say:

* ``type``: the type text of the docstring (Paddle's and PyTorch's ``axis (int|Tensor,
  optional)``; TensorFlow's first sentence of ``axis: A `Tensor`. ...``);
* ``tensor``: the type text names a tensor (``Tensor``, ``tensor``, ```Tensor```);
* ``sequence``: it names a list, tuple or sequence (``list``, ``tuple of ints``);
* ``bool``: the parameter is a flag (type text ``bool``, or a ``True``/``False`` default).

Nothing here is a hand list of parameters: what is not documented is not derived.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys

# "axis (int|Tensor, optional): ..." (Paddle, PyTorch, OneFlow)
_PAREN = re.compile(r"^\s*\**(\w+)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*:")
# "axis: A `Tensor`. Must be one of ..." (TensorFlow)
_COLON = re.compile(r"^\s*(\w+):\s+(\S.*)$")
_TENSOR = re.compile(r"\btensor\b|`Tensor`", re.IGNORECASE)
# in a description (TensorFlow's style) "the tensor" is the input; "A `Tensor`", "a scalar int32 tensor" a type
_TENSOR_PROSE = re.compile(r"\bTensor\b|\b(a|an|A|An)\b[^.]*\btensor\b")
_SEQUENCE = re.compile(r"\b(list|tuple|sequence|List|Tuple|Sequence)s?\b")
_BOOL = re.compile(r"^\s*bool\b|\bbool\s*[,|)]|\bbool$|`bool`")
#: section headers after which parameters are documented
_ARGS = re.compile(r"^\s*(Args|Arguments|Parameters|Keyword args|Keyword arguments)\s*:?\s*$")
_OTHER = re.compile(r"^\s*(Returns?|Raises|Examples?|Example::|Note|Notes|Yields|Shape|See also)\s*:?")


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.;])\s", text.strip(), maxsplit=1)[0]


def parse_doc(doc: str) -> tuple[dict[str, str], set[str]]:
    """(parameter name -> type text, the names typed by prose: TensorFlow's style), from ``Args:`` sections."""
    out: dict[str, str] = {}
    prose: set[str] = set()
    inside = False
    indent = None
    for line in (doc or "").splitlines():
        if _ARGS.match(line):
            inside, indent = True, None
            continue
        if not inside:
            continue
        if _OTHER.match(line) and (indent is None or len(line) - len(line.lstrip()) < indent):
            inside = False
            continue
        m = _PAREN.match(line) or _COLON.match(line)
        if not m:
            continue
        here = len(line) - len(line.lstrip())
        if indent is None:
            indent = here
        if here != indent:
            continue  # a continuation line that looks like "word: text"
        name, text = m.group(1), m.group(2)
        if name not in out:
            out[name] = text.strip() if m.re is _PAREN else _first_sentence(text)
            if m.re is _COLON:
                prose.add(name)
    return out, prose


def _signature_defaults(fn) -> dict[str, object]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    return {n: p.default for n, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def facts_of(fn) -> dict[str, dict]:
    """The documented parameters of ``fn`` (see the module docstring)."""
    types, described = parse_doc(inspect.getdoc(fn) or "")
    defaults = _signature_defaults(fn)
    out = {}
    for name in sorted(set(types) | {n for n, d in defaults.items() if isinstance(d, bool)}):
        text = types.get(name, "")
        prose = name in types and name in described
        out[name] = {"type": text[:120], "tensor": bool((_TENSOR_PROSE if prose else _TENSOR).search(text)),
                     "sequence": bool(_SEQUENCE.search(text)),
                     "bool": bool(_BOOL.search(text)) or isinstance(defaults.get(name), bool)}
    return out


def collect(framework: str, targets: list[str]) -> dict:
    """``{"versions": {...}, "targets": {target: facts or {"error": why}}}`` for ``framework``."""
    from harness.core import calls, registry

    adapter = registry.load_framework(framework)
    aliases = getattr(adapter, "call_aliases", None)
    try:  # the version of the API read: the framework's own package
        versions = {framework: str(importlib.import_module(framework).__version__)}
    except (ImportError, AttributeError):
        versions = adapter.versions()
    out: dict = {"versions": versions, "targets": {}}
    for target in sorted(set(targets)):
        try:
            out["targets"][target] = facts_of(calls.resolve(target, aliases))
        except (ImportError, AttributeError) as exc:
            out["targets"][target] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def main(argv: list[str]) -> int:
    """Print the facts of ``argv[1:]`` for framework ``argv[0]`` as one JSON line."""
    if not argv:
        print("usage: python -m harness.explore.apifacts FRAMEWORK TARGET...", file=sys.stderr)
        return 2
    print(json.dumps(collect(argv[0], argv[1:]), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
