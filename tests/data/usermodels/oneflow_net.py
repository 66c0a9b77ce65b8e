"""A user's OneFlow model for tests/test_usermodel.py (copied to a temporary folder outside the repository).

``build()`` exports everywhere; ``broken()`` adds ``oneflow.cumprod``, which oneflow-onnx has no
handler for (it writes the op into the graph as is: invalid-model).
"""

import oneflow as flow


class Net(flow.nn.Module):
    def __init__(self, broken=False):
        super().__init__()
        self.conv = flow.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = flow.nn.AdaptiveAvgPool2d(1)
        self.fc = flow.nn.Linear(4, 5)
        self.broken = broken

    def forward(self, x):
        y = flow.relu(self.conv(x))
        if self.broken:
            y = flow.cumprod(y, dim=1)
        # pool + flatten + Linear, as the flowvision networks end (a mean over a tuple of axes before the
        # Linear exports as a MatMul of mismatched shapes: oneflow-onnx-matmul-b852d0ad)
        return self.fc(flow.flatten(self.pool(y), 1))


def build():
    return Net()


def broken():
    return Net(broken=True)
