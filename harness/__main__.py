"""``python -m harness COMMAND``: report, diff, merge and other tools over result records.

A command is a module with a docstring (its description), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> exit code``; or a module with its
own ``main(argv) -> exit code`` (it then parses its arguments itself). Register
one with a single line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.core.errors import HarnessError

#: command name -> module implementing it
COMMANDS: dict[str, str] = {
    "report": "harness.cli.report",
    "diff": "harness.cli.diff",
    "merge": "harness.cli.merge",
    "bench-report": "harness.cli.bench_report",
    "suggest-expectations": "harness.cli.suggest",
    "triage": "harness.cli.triage",
    "bench": "harness.bench.runs",
    "shards": "harness.cli.shards",
    "pin-example": "harness.explore.pin",
    "envs": "harness.cli.envs",
    "tally": "harness.cli.tally",
    "model": "harness.cli.model",
    "view": "harness.cli.view",
    "derive": "harness.cli.derive",
    "pictures": "harness.cli.pictures",
}


def parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command."""
    p = argparse.ArgumentParser(
        prog="python -m harness",
        description="Tools over the conformance harness's result records (results/run-*.jsonl). "
                    "Run the cases themselves with pytest (e.g. `pytest -n auto`). Matrices, expectations "
                    "and --cases-dir are trusted code: a matrix's plugins: are imported and its call: "
                    "functions called.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        if hasattr(mod, "add_arguments"):
            sp = sub.add_parser(name, help=mod.HELP, description=mod.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
            mod.add_arguments(sp)
            sp.set_defaults(_run=mod.run)
        else:  # the module parses its own arguments: pass them through
            first = (mod.__doc__ or name).strip().splitlines()[0]
            sp = sub.add_parser(name, help=getattr(mod, "HELP", first), add_help=False)
            sp.add_argument("argv", nargs=argparse.REMAINDER, help=f"see: python -m harness {name} --help")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        mod = importlib.import_module(COMMANDS[argv[0]])
        if not hasattr(mod, "add_arguments"):  # parses its own arguments (its --help included)
            return mod.main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args._run(args)
    except HarnessError as exc:  # the harness's own input or machine: one line, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
