"""The package's shape: no import cycles, no private names across modules, a framework-free plugin."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "harness"


def _framework_modules() -> tuple[str, ...]:
    """The frameworks (from the registry's view of ``harness/frameworks/``) and the import names of the
    packages their replays need (each adapter's ``REPLAY_REQUIRES``, read from its source)."""
    from harness.core import registry, repro

    names = set(registry.framework_names())
    for fw in registry.framework_names():
        path = PKG / "frameworks" / f"{fw}.py"
        if path.is_file():
            names |= {n.replace("-", "_") for n in repro.module_constant(path, repro.REQUIRES_NAME)}
    names.discard("paddlepaddle")  # its import name is paddle, already listed
    return tuple(sorted(names))


FRAMEWORKS = _framework_modules()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _resolve(module: str, is_pkg: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(name: str, path: Path, known: dict[str, Path]):
    """(imported harness module, names taken from it, line) for every import in the file, lazy ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = _resolve(name, is_pkg, node.level, node.module) if node.level else (node.module or "")
            if not mod.startswith("harness"):
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                if sub in known:  # ``from . import registry``: the submodule itself
                    yield sub, (), node.lineno
                else:
                    yield mod, (alias.name,), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("harness"):
                    yield alias.name, (), node.lineno


def _graph() -> dict[str, set[str]]:
    known = _modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        for mod, _, _ in _imports(name, path, known):
            if mod in known and mod != name and not name.startswith(mod + "."):
                graph[name].add(mod)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_cycles():
    """Walks every import of the package, module-level and inside functions alike."""
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_private_name_is_used_across_modules():
    known = _modules()
    offenders = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for mod, names, line in _imports(name, path, known):
            offenders += [f"{path.relative_to(ROOT)}:{line}: from {mod} import {n}"
                          for n in names if n.startswith("_") and not n.startswith("__")]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                for alias in node.names:
                    aliases[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert offenders == []


def test_the_framework_list_comes_from_the_registry():
    assert {"paddle", "torch", "tensorflow", "oneflow", "paddle2onnx", "tf2onnx"} <= set(FRAMEWORKS)


def test_the_plugin_imports_no_framework():
    code = ("import sys, harness.plugin, harness.plugin.collection, harness.plugin.lifecycle; "
            f"print([m for m in {FRAMEWORKS!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


#: What each layer may import from the others (``harness.X`` packages; the top-level ``harness``
#: package itself is empty). ``core`` runs in the case servers: it reaches the extension packages
#: only, never the controller's layers.
LAYERS = {
    "core": {"core", "frameworks", "builders", "runtimes", "passes"},
    "frameworks": {"core", "builders"},
    "builders": {"core", "frameworks"},  # lazily, inside a builder (the controller imports builders: test_builders)
    "runtimes": {"core"},
    "passes": {"core"},
    "spec": {"core", "spec"},
    "isolation": {"core", "isolation", "runtimes"},
    "explore": {"core", "spec", "explore", "report"},
    "report": {"core", "spec", "report", "isolation"},
    "plugin": {"core", "spec", "isolation", "explore", "report", "plugin", "runtimes", "passes"},
    "bench": {"core", "spec", "isolation", "report", "bench"},
    "cli": {"core", "spec", "isolation", "explore", "report", "plugin", "bench", "cli"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``module -> imported`` edges that cross a layer boundary :data:`LAYERS` does not allow."""
    bad = []
    for mod, deps in sorted(graph.items()):
        allowed = LAYERS.get(_layer(mod))
        if allowed is None:
            continue
        allowed = allowed | {_layer(mod)}
        bad += [f"{mod} imports {dep}" for dep in sorted(deps) if _layer(dep) and _layer(dep) not in allowed]
    return bad


def test_every_package_of_harness_has_a_layer():
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS), "give each new package of harness/ its place in LAYERS"


def test_layers_import_only_what_they_may():
    assert layer_violations(_graph()) == []


def test_the_layer_check_finds_a_crossing():
    assert layer_violations({"harness.core.pipeline": {"harness.plugin.options"}}) == [
        "harness.core.pipeline imports harness.plugin.options"]
    assert layer_violations({"harness.core.pipeline": {"harness.core.record", "harness.runtimes"}}) == []


def test_the_server_side_parses_as_python_3_10():
    """The OneFlow environment runs core/ on 3.10: no syntax newer than that (e.g. ``except*``, PEP 695)."""
    offenders = []
    for folder in ("core", "frameworks", "builders", "runtimes", "passes", "isolation"):
        for path in sorted((PKG / folder).glob("*.py")):
            try:
                ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 10))
            except SyntaxError as exc:
                offenders.append(f"{path.relative_to(ROOT)}:{exc.lineno}: {exc.msg}")
    assert offenders == []


README = ROOT / "README.md"


def _layout_rows() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows.append((cells[0].strip("`"), cells[1]))
    return rows


def test_readme_is_a_map():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 170


def test_every_path_of_the_readme_layout_exists():
    missing = []
    for path, what in _layout_rows():
        if not (ROOT / path).exists():
            missing.append(path)
        if path.startswith("harness/") and path.endswith("/"):
            missing += [f"{path}{n}" for n in re.findall(r"`([\w]+\.py|templates/)`", what)
                        if not (ROOT / path / n).exists()]
        missing += [n for n in re.findall(r"`((?:harness|tests|cases|docs)/[\w/.]+)`", what) if not (ROOT / n).exists()]
    assert missing == []


def test_the_readme_layout_names_every_module():
    rows = dict(_layout_rows())
    unnamed = []
    for pkg in sorted(p for p in PKG.iterdir() if (p / "__init__.py").is_file()):
        key = f"harness/{pkg.name}/"
        assert key in rows, f"README layout has no row for {key}"
        if "`" not in rows[key]:
            continue  # a row that describes its folder without listing files
        named = set(re.findall(r"`([\w]+\.py)`", rows[key]))
        if pkg.name in ("cli", "bench", "frameworks", "builders"):
            continue  # one module per command / framework: the row states the convention
        unnamed += [f"{key}{p.name}" for p in sorted(pkg.glob("*.py")) if p.name != "__init__.py"
                    and p.name not in named]
    assert unnamed == []


def test_every_docs_page_the_readme_links_exists():
    links = re.findall(r"\]\((docs/[\w.-]+\.md)\)", README.read_text(encoding="utf-8"))
    assert links and all((ROOT / link).is_file() for link in links)
