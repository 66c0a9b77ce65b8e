"""A user's Paddle model for tests/test_usermodel.py (copied to a temporary folder outside the repository).

``build()`` exports everywhere; ``broken()`` adds ``paddle.cumprod``, which Paddle2ONNX has no
converter for.
"""

import paddle


class Net(paddle.nn.Layer):
    def __init__(self, broken=False):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3, padding=1)
        self.fc = paddle.nn.Linear(4, 5)
        self.broken = broken

    def forward(self, x):
        y = paddle.nn.functional.relu(self.conv(x))
        if self.broken:
            y = paddle.cumprod(y, dim=1)
        return self.fc(y.mean(axis=[2, 3]))


def build():
    return Net()


def broken():
    return Net(broken=True)
