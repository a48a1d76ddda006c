"""Benchmark scripts never replace a file they did not write (docs/errors_and_safety.md).

benchmarks/pretrained.py and reuse.py are checked with their own runs (test_data_layered.py,
test_benchmarks_reuse.py); here the two whose runs are too long for the suite: their output
checks happen before any work, so a refusal costs nothing.
"""
from __future__ import annotations

import json
import os

from training_helpers import benchmark_module


def test_train_memory_refuses_a_foreign_out_before_any_work(tmp_path, capsys):
    bench = benchmark_module("train_memory")
    mine = tmp_path / "mine.json"
    mine.write_text('{"benchmark": "gpu"}')
    # Nothing is measured (a child would take minutes): the check comes first.
    for extra in ([], ["--overwrite"]):
        assert bench.main(["--out", str(mine), "--modes", "bptt", "--steps", "2", *extra]) == 2
        err = capsys.readouterr().err
        assert str(mine) in err and len(err.strip().splitlines()) == 1
    assert mine.read_text() == '{"benchmark": "gpu"}'
    assert bench.main(["--out", str(tmp_path / "no" / "such" / "x.json"), "--modes", "bptt"]) == 2
    assert "--out" in capsys.readouterr().err


def test_gpu_benchmark_never_replaces_a_file(tmp_path, capsys):
    import pytest

    gpu = benchmark_module("gpu")
    taken = tmp_path / "gpu_x_2026-12-01.json"
    taken.write_text("{}")
    (tmp_path / "gpu_x_2026-12-01_2.json").write_text("{}")
    assert gpu.free_path(str(taken)) == str(tmp_path / "gpu_x_2026-12-01_3.json")
    assert gpu.free_path(str(tmp_path / "new.json")) == str(tmp_path / "new.json")
    # An existing --out FILE.json, or a file given as the folder: refused before the probe.
    for out in (taken, tmp_path / "plain"):
        out.write_text("{}")
        with pytest.raises(SystemExit) as exc:
            gpu.main(["--dry-run", "--out", str(out)])
        assert exc.value.code == 2 and str(out) in capsys.readouterr().err
    assert json.loads(taken.read_text()) == {} and sorted(os.listdir(tmp_path)) == [
        "gpu_x_2026-12-01.json", "gpu_x_2026-12-01_2.json", "plain"]
