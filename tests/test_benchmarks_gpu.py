"""benchmarks/gpu.py: the prepared GPU benchmark, run on the CPU with `--dry-run` (issue 14).

The default test runs the probe, the float32 inference job and the chairs training step (each
in its own child process, as on the GPU) with imports of tensorflow_datasets, grain and
ml_collections blocked in every process (a `sitecustomize` on PYTHONPATH that logs and refuses
them). The slow test runs every job, and the official code too when DEQ_FLOW_OFFICIAL names a
local copy of code.v.2.0.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from training_helpers import benchmark_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu.py")
BLOCKED = ("tensorflow_datasets", "grain", "ml_collections")

SITECUSTOMIZE = f"""
import os, sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            with open(os.environ["DEQ_FLOW_BLOCKED_LOG"], "a") as fh:
                fh.write(name + "\\n")
            raise ImportError("blocked by test_benchmarks_gpu: " + name)
        return None
sys.meta_path.insert(0, _Block())
"""


def _load_gpu():
    return benchmark_module("gpu")


def _env(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), ROOT, env.get("PYTHONPATH", "")])
    env["DEQ_FLOW_BLOCKED_LOG"] = str(tmp_path / "blocked.log")
    env.pop("DEQ_FLOW_OFFICIAL", None)
    return env


def _run(tmp_path, *extra):
    env = _env(tmp_path)
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, SCRIPT, "--dry-run", "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = tmp_path / "blocked.log"
    assert not log.exists(), f"blocked imports were attempted: {log.read_text()}"
    return json.loads(out.read_text()), proc.stdout


def test_blocker_refuses_and_logs(tmp_path):
    """The import blocker used below does catch an import (so the checks below can fail)."""
    env = _env(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "import ml_collections"], capture_output=True,
                          text=True, env=env, check=False)
    assert proc.returncode != 0 and "blocked by test_benchmarks_gpu" in proc.stderr
    assert (tmp_path / "blocked.log").read_text().split() == ["ml_collections"]


def _check_inference(r, steps=(2, 3)):
    assert r["impl"] == "jax" and r["variant"] == "tiny" and r["batch"] == 2
    for n in steps:
        assert r[f"forward_s_{n}"] > 0 and r[f"compile_s_{n}"] >= 0
        assert r[f"pairs_per_s_{n}"] == pytest.approx(2 / r[f"forward_s_{n}"], rel=1e-6)
    assert math.isfinite(r["per_iter_s"]) and math.isfinite(r["fixed_s"])


@pytest.mark.slow   # ~1 min; the other gpu.py checks stay in make test
def test_dry_run_inference_and_chairs_step(tmp_path):
    rep, stdout = _run(tmp_path, "--only", "inference:float32,train:chairs:correction6")
    assert rep["dry_run"] and rep["platform"] == "cpu" and rep["benchmark"] == "gpu"
    kinds = [r["kind"] for r in rep["records"]]
    assert "error" not in kinds and "killed" not in kinds and "skipped" not in kinds, rep["records"]
    inf = [r for r in rep["records"] if r["kind"] == "inference"]
    assert len(inf) == 1 and inf[0]["dtype"] == "float32"
    _check_inference(inf[0])
    (tr,) = [r for r in rep["records"] if r["kind"] == "train"]
    assert tr["setting"] == "chairs" and tr["mode"] == "correction6" and tr["batch"] == 2
    assert tr["step_s"] > 0 and tr["peak_mb"] > 0 and math.isfinite(tr["loss"])
    assert tr["memory_analysis"]["temp_size_in_bytes"] > 0
    assert "| impl | variant | dtype | batch |" in stdout and "| jax | chairs | 2 | 2 |" in stdout


def test_full_sizes_refused_without_a_gpu(tmp_path):
    """Without --dry-run and with no GPU visible, the script stops after its probe (exit 1)."""
    import jax
    if jax.devices()[0].platform == "gpu":
        pytest.skip("a GPU is visible: the full benchmark would run")
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT,
                          timeout=300, check=False)
    assert proc.returncode == 1 and "JAX sees no GPU" in proc.stderr, proc.stderr[-2000:]


def test_ratios_and_table_from_records():
    """ours / official and DEQ / BPTT ratios pair records of the same setting only."""
    gpu = _load_gpu()
    inf = {"kind": "inference", "variant": "B", "dtype": "float32", "batch": 1, "forward_s_12": 1.2,
               "forward_s_32": 2.2, "per_iter_s": 0.05, "fixed_s": 0.6, "pairs_per_s_12": 1 / 1.2,
               "pairs_per_s_32": 1 / 2.2, "compile_s_32": 3.0}
    tr = {"kind": "train", "variant": "B", "batch": 6, "steps": 36, "peak_source": "peak_bytes_in_use",
              "compile_s": 9.0}
    recs = [inf | {"impl": "jax"}, inf | {"impl": "official", "per_iter_s": 0.1, "fixed_s": 0.3,
                                          "forward_s_12": 1.5, "forward_s_32": 3.5},
            inf | {"impl": "jax", "batch": 8},             # no official partner: no ratio
            tr | {"impl": "jax", "setting": "chairs", "step_s": 1.0, "peak_mb": 300.0, "pairs_per_s": 6.0},
            tr | {"impl": "official", "setting": "chairs", "step_s": 2.0, "peak_mb": 600.0, "pairs_per_s": 3.0},
            tr | {"impl": "jax", "setting": "bptt", "steps": 12, "step_s": 0.5, "peak_mb": 1200.0,
                  "pairs_per_s": 12.0}]
    r = gpu.ratios(recs)
    assert r["inference B b1 float32 per_iter_s ours/official"] == pytest.approx(0.5)
    assert r["inference B b1 float32 fixed_s ours/official"] == pytest.approx(2.0)
    assert r["train chairs step_s ours/official"] == pytest.approx(0.5)
    assert r["train chairs peak_mb / bptt"] == pytest.approx(0.25)
    assert not any("b8" in k for k in r)
    report = {"records": recs, "ratios": r, "config": {"steps": (12, 32)}, "dry_run": False,
                  "elapsed_s": 1.0, "device_kind": "X", "jax": "0"}
    text = gpu.table(report)
    assert "| jax | B | float32 | 1 | 0.83 | 0.45 | 0.0500 | 0.600 | 3.0 | 0.50 |" in text
    assert "| jax | chairs | 36 | 6 | 1.000 | 6.00 | 300 (peak_bytes_in_use) | 9.0 | 0.50 | 0.50 |" in text


@pytest.mark.slow
def test_dry_run_every_job(tmp_path):
    """All jobs (both dtypes, chairs / IFT / BPTT, and the official code when given)."""
    official = os.environ.get("DEQ_FLOW_OFFICIAL")
    rep, _ = _run(tmp_path, *(["--official", official] if official else []))
    kinds = [r["kind"] for r in rep["records"]]
    assert "error" not in kinds and "killed" not in kinds, rep["records"]
    ours = [r for r in rep["records"] if r["kind"] == "inference" and r["impl"] == "jax"]
    assert sorted(r["dtype"] for r in ours) == ["bfloat16", "float32"]
    for r in ours:
        _check_inference(r)
    settings = sorted(r["setting"] for r in rep["records"] if r["kind"] == "train" and r["impl"] == "jax")
    assert settings == ["bptt", "chairs", "ift"]
    assert "train chairs peak_mb / bptt" in rep["ratios"]
    if official:
        assert "train chairs step_s ours/official" in rep["ratios"]
        # (per-iteration ratios need a positive official slope, which tiny sizes need not give)
        assert "inference tiny b2 float32 forward_s_3 ours/official" in rep["ratios"]
