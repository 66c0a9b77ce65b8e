"""What runs inside a case server: the case, the pipeline, its verdict and its record.

The rule of this package: its modules import only the standard library, numpy, onnx and
onnxruntime at module level (a framework, a runtime or a pass only through the registries of
:mod:`harness.core.registry` and :mod:`harness.core.named`), and they stay importable on
Python 3.10 -- the OneFlow environment runs them there, and every repro bundle vendors them.
``tests/test_structure.py`` checks both, and that nothing here imports the plugin, the spec
loader, the reports, property mode, the commands or the bench.
"""
