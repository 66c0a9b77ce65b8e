"""Support reports built only from result records: markdown, JSON, HTML and PNG.

Modules (each small): :mod:`.inputs` finds, reads and merges results files;
:mod:`.aggregate` turns records into per-kernel rows and heatmap cells;
:mod:`.markdown`, :mod:`.jsonout`, :mod:`.html`, :mod:`.png` write one output
each; :mod:`.build` writes them all; :mod:`.diff` compares two runs. The
``cmd_*`` modules are the ``python -m harness`` subcommands.
"""

from .build import build_reports  # noqa: F401
