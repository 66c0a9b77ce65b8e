"""YAML loading that remembers where every value came from.

Schema errors must name the file, the line and the field, so the loader keeps
a map from a JSON-pointer-like path (tuple of keys and indices) to the line of
the node that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from harness.core.errors import HarnessError


class MatrixError(HarnessError):
    """A problem in a matrix file: one line, naming the file, line and field."""

    def __init__(self, path: str | Path, line: int | None, field: str, message: str):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {field}: {message}")


@dataclass
class SourcedDoc:
    """A parsed YAML document plus the line of every path inside it."""

    path: Path
    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, key_path: tuple) -> int | None:
        """The line of the deepest known node on ``key_path``."""
        key_path = tuple(key_path)
        while key_path:
            if key_path in self.lines:
                return self.lines[key_path]
            key_path = key_path[:-1]
        return self.lines.get((), None)

    def first_line(self, *key_paths: tuple) -> int | None:
        """The line of the first of ``key_paths`` present in the file (else the nearest of the first).

        A value merged from several places (variant, entry, file defaults) is
        reported at the line that actually wrote it.
        """
        for key_path in key_paths:
            if tuple(key_path) in self.lines:
                return self.lines[tuple(key_path)]
        return self.line_of(key_paths[0]) if key_paths else None


def _walk(node: yaml.Node, path: tuple, lines: dict, src: Path) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for knode, vnode in node.value:
            key = _dummy_loader().construct_object(knode, deep=True)
            if key in out:
                raise MatrixError(src, knode.start_mark.line + 1, ".".join(map(str, path + (key,))),
                                  "duplicate key")
            out[key] = _walk(vnode, path + (key,), lines, src)
            lines[path + (key,)] = knode.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(v, path + (i,), lines, src) for i, v in enumerate(node.value)]
    return _dummy_loader().construct_object(node, deep=True)


_LOADER: yaml.SafeLoader | None = None
#: libyaml's parser where PyYAML was built with it (10x faster; same nodes and marks)
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _dummy_loader() -> yaml.SafeLoader:
    global _LOADER
    if _LOADER is None:
        _LOADER = yaml.SafeLoader("")
    return _LOADER


def load_yaml(path: str | Path) -> SourcedDoc:
    """Parse ``path`` into a :class:`SourcedDoc`; a syntax error becomes a MatrixError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MatrixError(path, None, "<file>", f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise MatrixError(path, line, "<encoding>", f"not UTF-8 text (byte {raw[exc.start]:#04x} at "
                          f"offset {exc.start}); save the file as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if line is None and isinstance(getattr(exc, "position", None), int):  # reader errors
            line = text[:exc.position].count("\n") + 1
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise MatrixError(path, line, "<syntax>", problem) from None
    lines: dict[tuple, int] = {}
    data = None if node is None else _walk(node, (), lines, path)
    return SourcedDoc(path, data, lines)
