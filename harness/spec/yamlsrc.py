"""YAML loading that remembers where every value came from.

Schema errors must name the file, the line and the field, so the loader keeps
a map from a JSON-pointer-like path (tuple of keys and indices) to the line of
the node that produced it.

This is the one YAML loader of the harness's input files. A matrix is data, so it
accepts JSON's types only: any tag (``!!python/...``, ``!!set``, ``!custom``) and any
implicit non-JSON value (a date) is a :class:`MatrixError`; aliases are bounded (an
alias bomb or a recursive alias is refused, not expanded) and so is nesting.
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


#: the tags a value may carry: JSON's types (a matrix is data, and records and reports are JSON)
_JSON_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
_MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_WHAT = {"timestamp": "a date or time", "binary": "binary data", "set": "a set", "omap": "an ordered map",
         "pairs": "a list of pairs", "merge": "a merge key (<<)", "value": "a value key (=)"}
#: values an alias may add in all (each use of an anchor copies its whole subtree): bounds an alias bomb
MAX_ALIAS_VALUES = 10_000
#: how deeply mappings and lists may nest
MAX_DEPTH = 64


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


class _Builder:
    """Turn a composed node graph into plain JSON-like data, recording the line of every path.

    Only JSON's types are accepted (any other tag, explicit like ``!!python/tuple`` or
    implicit like a date, is refused); aliases are followed but their copies are counted,
    and an alias inside its own anchor is refused.
    """

    def __init__(self, src: Path, lines: dict):
        self.src, self.lines = src, lines
        self.seen: set[int] = set()  # nodes built once: a second visit is an alias's copy
        self.open: set[int] = set()  # the nodes on the current path (an alias to one is a cycle)
        self.copies = 0

    def _error(self, node: yaml.Node, path: tuple, message: str) -> MatrixError:
        return MatrixError(self.src, node.start_mark.line + 1, ".".join(map(str, path)) or "<root>", message)

    def build(self, node: yaml.Node, path: tuple, copy: bool = False) -> Any:
        """The value of ``node`` at ``path``; ``copy``: reached through an alias (counted)."""
        self.lines[path] = node.start_mark.line + 1
        if id(node) in self.open:
            raise self._error(node, path, "an alias refers to an anchor that contains it (a recursive alias)")
        copy = copy or id(node) in self.seen
        if copy:
            self.copies += 1
            if self.copies > MAX_ALIAS_VALUES:
                raise self._error(node, path, f"the aliases expand to more than {MAX_ALIAS_VALUES} values "
                                              f"(an alias bomb?); write the values out")
        self.seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if len(path) >= MAX_DEPTH:
            raise MatrixError(self.src, node.start_mark.line + 1, ".".join(map(str, path[:4])) + "...",
                              f"nested more than {MAX_DEPTH} levels deep")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP_TAG:
                    raise self._refused(node, path)
                out: dict = {}
                for knode, vnode in node.value:
                    key = self.key(knode, path)
                    if key in out:
                        raise MatrixError(self.src, knode.start_mark.line + 1,
                                          ".".join(map(str, path + (key,))), "duplicate key")
                    out[key] = self.build(vnode, path + (key,), copy)
                    self.lines[path + (key,)] = knode.start_mark.line + 1
                return out
            if node.tag != _SEQ_TAG:
                raise self._refused(node, path)
            return [self.build(v, path + (i,), copy) for i, v in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, path: tuple) -> Any:
        """Text, a number, true/false or null; any other scalar is refused."""
        if node.tag not in _JSON_TAGS:
            raise self._refused(node, path)
        return _dummy_loader().construct_object(node, deep=True)

    def key(self, knode: yaml.Node, path: tuple) -> str:
        """A mapping key: text only (JSON's object keys)."""
        if not isinstance(knode, yaml.ScalarNode):
            raise self._error(knode, path, "a key must be text, not a list or mapping")
        if knode.tag not in _JSON_TAGS:
            raise self._refused(knode, path)
        key = _dummy_loader().construct_object(knode, deep=True)
        if not isinstance(key, str):
            kind = {bool: "true/false", type(None): "null"}.get(type(key), "a number")
            raise self._error(knode, path, f"key {knode.value!r} is not text (YAML reads it as {kind}); quote it")
        return key

    def _refused(self, node: yaml.Node, path: tuple) -> MatrixError:
        name = _tag_name(node.tag)
        what = _WHAT.get(name[2:]) if name.startswith("!!") else None
        value = f" {node.value!r}" if isinstance(node, yaml.ScalarNode) and len(node.value) <= 40 else ""
        if node.tag.endswith(":timestamp") and not node.style:  # a bare date, read as one implicitly
            return self._error(node, path, f"{what}{value} is not a JSON value; quote it to keep it as text")
        return self._error(node, path, f"tag {name}{value}: only JSON values (text, numbers, true/false, "
                                       f"null, lists, mappings) are allowed"
                                       + (f"; {what} is not one" if what else ""))


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
    except RecursionError:
        raise MatrixError(path, None, "<syntax>", f"nested too deeply (more than {MAX_DEPTH} levels allowed)") \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if line is None and isinstance(getattr(exc, "position", None), int):  # reader errors
            line = text[:exc.position].count("\n") + 1
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise MatrixError(path, line, "<syntax>", problem) from None
    lines: dict[tuple, int] = {}
    data = None if node is None else _Builder(path, lines).build(node, ())
    return SourcedDoc(path, data, lines)
