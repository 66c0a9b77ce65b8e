"""ONNX export conformance harness: YAML matrices -> isolated cases -> measured verdicts."""

__version__ = "0.1.0"
