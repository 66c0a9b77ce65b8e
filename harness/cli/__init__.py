"""The ``python -m harness`` commands, one module each (docstring, ``HELP``, ``add_arguments``, ``run``)."""
