"""Reports are written whole or not at all: a full disk keeps the previous files and says so in one line."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core import record, status
from harness.core.atomic import AtomicWriteError, write_atomic

ROOT = Path(__file__).resolve().parent.parent


def test_write_atomic_replaces_whole_and_keeps_the_mode(tmp_path):
    p = tmp_path / "support.md"
    p.write_text("old\n")
    p.chmod(0o640)
    write_atomic(p, "new\n")
    assert p.read_text() == "new\n" and (p.stat().st_mode & 0o777) == 0o640
    assert [q.name for q in tmp_path.iterdir()] == ["support.md"]


def test_a_full_disk_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    """A small fake of ENOSPC: the write gets half of the data out, then the disk is full."""
    p = tmp_path / "support.md"
    p.write_text("the previous report\n")

    def half_then_full(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(AtomicWriteError) as info:
        write_atomic(p, "x" * 10000)
    assert str(info.value) == f"{p}: cannot write it (No space left on device); the previous file is kept"
    assert p.read_text() == "the previous report\n"
    assert [q.name for q in tmp_path.iterdir()] == ["support.md"]  # no temporary file left behind


def _results(path: Path, fake_matrix, n: int) -> Path:
    recs = [record.new(c, status.PASS, finished="2026-12-02T03:00:00+00:00") for c in fake_matrix.cases[:n]]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_report_on_a_disk_that_fills_keeps_every_previous_report(tmp_path, fake_matrix):
    """A child whose files may not grow past 2 KiB (RLIMIT_FSIZE) stands for a disk that fills mid-write."""
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "harness", "report", "--no-matrix", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": str(tmp_path)}
    first = subprocess.run(cmd + [str(_results(tmp_path / "a.jsonl", fake_matrix, 4))], capture_output=True,
                           text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"support.md", "support.json", "support.html", "support.png"}

    proc = subprocess.run(cmd + [str(_results(tmp_path / "b.jsonl", fake_matrix, 20))], capture_output=True,
                          text=True, timeout=300, env=env, preexec_fn=_limit_file_size(2048))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert errors[0].startswith(f"error: --out {out}: cannot write ({out}/support.") and \
        "(File too large); the previous file is kept" \
        in errors[0], errors
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # every old file whole, no temporary left
