"""What runs inside the case servers: stdlib, numpy and onnx only, importable on Python 3.10."""
