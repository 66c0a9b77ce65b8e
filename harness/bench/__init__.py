"""The benchmark behind ``python -m harness bench``: the harness against a bare export loop."""
