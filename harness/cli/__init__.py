"""The commands of ``python -m harness``: one module each, registered in :mod:`harness.__main__`.

A command module has a docstring (its description), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> exit code``. Its logic lives in the layer it
belongs to (:mod:`harness.report`, :mod:`harness.bench.runs`, ...); the module only parses and calls.
"""
