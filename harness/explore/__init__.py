"""Property mode (``pytest --explore``): strategies derived from matrix entries, and pinning
a found failure as a fixed variant."""
