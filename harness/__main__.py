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

#: command name -> module implementing it
COMMANDS: dict[str, str] = {
    "report": "harness.report.cmd_report",
    "diff": "harness.report.cmd_diff",
    "merge": "harness.report.cmd_merge",
    "bench-report": "harness.report.cmd_bench",
    "suggest-expectations": "harness.suggest",
    "bench": "harness.bench",
    "shards": "harness.cmd_shards",
    "pin-example": "harness.pin",
    "envs": "harness.cmd_envs",
    "view": "harness.cli.view",
    "pictures": "harness.cli.pictures",
}


def parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command."""
    p = argparse.ArgumentParser(
        prog="python -m harness",
        description="Tools over the conformance harness's result records (results/run-*.jsonl). "
                    "Run the cases themselves with pytest (e.g. `pytest -n auto`).")
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
    return args._run(args)


if __name__ == "__main__":
    sys.exit(main())
