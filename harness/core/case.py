"""The Case: one operator x variant x opset x dtype x exporter x device."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from functools import cached_property

#: defaults of the runtime and post-export pass axes (left out of ids); see harness.runtimes/passes
DEFAULT_RUNTIME = "ort"
DEFAULT_PASS = "none"


def model_key(framework: str, kernel: str, variant: str, dtype: str) -> str:
    """:attr:`Case.model_key` from its parts (also of a record, which has the same fields)."""
    return f"{framework}-{kernel}-{variant}-{dtype}"


@dataclass(frozen=True)
class Case:
    """Everything a worker needs to run one case; plain data, JSON-serialisable."""

    framework: str
    kernel: str
    variant: str
    exporter: str
    opset: int
    dtype: str
    device: str
    spec: dict = field(hash=False, compare=False)
    tolerance: dict = field(hash=False, compare=False)
    declared: dict = field(hash=False, compare=False)
    shared_key: str = ""
    skip: str | None = None
    smoke: bool = False
    source: str = ""
    #: the runtime that runs the exported model (see :mod:`harness.runtimes`)
    runtime: str = "ort"
    #: the post-export pass applied before the runtime (see :mod:`harness.passes`)
    post_pass: str = "none"

    @cached_property
    def id(self) -> str:
        """Stable, readable id, e.g. ``paddle-dygraph-pool2d-max_ceil-opset10-float32-cpu``."""
        base = (f"{self.framework}-{self.exporter}-{self.kernel}-{self.variant}"
                f"-opset{self.opset}-{self.dtype}-{self.device}")
        # axes added after the first ids existed appear only when not default, so old ids stay valid
        if self.runtime != DEFAULT_RUNTIME:
            base += f"-{self.runtime}"
        if self.post_pass != DEFAULT_PASS:
            base += f"-{self.post_pass}"
        return base

    @property
    def model_key(self) -> str:
        """What the built model depends on: the same for every opset and exporter."""
        return model_key(self.framework, self.kernel, self.variant, self.dtype)

    @property
    def export_key(self) -> str:
        """What the exported model depends on: shared by every runtime and pass of a case."""
        return f"{self.model_key}-{self.exporter}-opset{self.opset}@{self.device}"

    @property
    def seed(self) -> int:
        """Deterministic seed for inputs and weights, derived from the model key."""
        return zlib.crc32(self.model_key.encode()) & 0x7FFFFFFF

    def record_fields(self) -> dict:
        """The axes a record carries besides the classic ones (see :func:`harness.core.record.new`)."""
        return {"runtime": self.runtime, "post_pass": self.post_pass}

    def to_dict(self) -> dict:
        """Plain dict (for the worker pipe and for result records)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: it is sent as JSON
        d["id"] = self.id
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Case":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d.pop("id", None)
        return cls(**d)
