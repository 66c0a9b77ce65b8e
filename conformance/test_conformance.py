"""The conformance cases: one test per case of the YAML matrices in cases/."""


def test_case(case, case_runner, request):
    """Export, check, run in ONNX Runtime and compare; the record goes to the results file."""
    record = case_runner.run(case)
    request.node.user_properties.append(("record", record))
    case_runner.judge(case, record)
