"""The ``python -m harness`` commands, one module each (see :mod:`harness.__main__`)."""
