"""A user's PyTorch model for tests/test_usermodel.py (copied to a temporary folder outside the repository).

``build()`` exports everywhere; ``broken()`` adds a custom operator (``usernet::twice``) that no
exporter can translate to ONNX.
"""

import torch


@torch.library.custom_op("usernet::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@twice.register_fake
def _(x):
    return torch.empty_like(x)


class Net(torch.nn.Module):
    def __init__(self, broken=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 5)
        self.broken = broken

    def forward(self, x):
        y = torch.relu(self.conv(x))
        if self.broken:
            y = twice(y)
        return self.fc(y.mean((2, 3)))


def build():
    return Net()


def broken():
    return Net(broken=True)
