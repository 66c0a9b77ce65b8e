"""The case files of ``cases/``: YAML with source positions, JSON Schemas, matrices and expectations.

Runs in the pytest controller and in the commands, never in a case server.
"""
