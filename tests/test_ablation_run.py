"""A tiny ablation end to end: three settings trained, logged, probed, tabulated and plotted.

One module-scoped run (tiny model, 32x48 crops, 4 steps per setting, the settings in parallel
child processes) feeds every test.
"""
import json
import math
import os

import matplotlib.image as mpimg
import pytest

from deq_flow_jax.ablation import runner
from deq_flow_jax.ablation.settings import SETTINGS
from deq_flow_jax.configs import ablation as ablation_config

# Slow-marked: about 2 minutes on a quiet 2-core CPU (3 train-step compiles, the settings in
# parallel child processes), which the 10-minute CI budget no longer holds beside the rest;
# `make test-slow` runs it. The CLI and the collection step stay in the default suite
# (test_ablation_cli.py, test_ablation_collect.py).
pytestmark = pytest.mark.slow

STEPS = 4
JAC_WEIGHT = 50.0


def tiny_config(data_dir):
    c = ablation_config.get_config("synthetic")
    c.model.variant = "tiny"
    c.num_steps = STEPS
    c.batch_size = 2
    c.lr = 2e-3
    c.data.crop_size = (32, 48)
    c.data.data_dir = str(data_dir)
    c.data.synthetic.update(dict(height=40, width=56, num_train=8, num_val=2, seed=0))
    c.data.val_max_examples = 2
    c.num_val_images = 0
    c.deq.f_max_steps = c.deq.b_max_steps = 6
    c.log_every = 2
    c.eval_every = 4
    c.checkpoint_every = 4
    c.sradius_every = 1          # one compiled step variant per setting
    c.sradius_iters = 4
    c.ablation.jac_weight = JAC_WEIGHT
    c.ablation.jac_every = 1
    c.ablation.probe_examples = 2
    c.ablation.probe_jac_probes = 16
    c.ablation.probe_sradius_iters = 5
    return c


@pytest.fixture(scope="module")
def ablation_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation")
    workdir = str(root / "run")
    # parallel child processes: XLA compiles on one core each, so this halves the wall time
    summary = runner.run_ablation(tiny_config(root / "data"), workdir, parallel=True)
    return workdir, summary


def test_outputs_exist_and_hold_finite_numbers(ablation_run):
    workdir, summary = ablation_run
    for name in ("fig1.png", "summary.md", "summary.json", "ablation.csv", "ablation.jsonl",
                 "ablation_config.json"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    assert mpimg.imread(os.path.join(workdir, "fig1.png")).shape[1] > 200
    assert set(summary) == set(SETTINGS)
    metrics = ("final_loss", "val_epe", "best_val_epe", "zero_epe", "f_rel_start", "f_rel_end",
               "f_rel_growth", "f_nstep", "sradius_end", "jac_fro", "sradius_final", "steps_per_s")
    for name in SETTINGS:
        row = summary[name]
        assert row["steps"] == STEPS
        for m in metrics:
            assert math.isfinite(row[m]), (name, m, row[m])
        for f in ("train.jsonl", "log.csv", "diagnostics.json", "run_info.json", "config.json"):
            assert os.path.exists(os.path.join(workdir, name, f)), (name, f)
    for name in ("ift", "ift_jac"):                   # IFT backward-solve residual is logged
        assert math.isfinite(summary[name]["b_rel_end"]) and summary[name]["b_rel_end"] > 0
    assert math.isfinite(summary["ift_jac"]["jac_loss_end"])
    on_disk = json.load(open(os.path.join(workdir, "summary.json")))
    assert on_disk["correction"]["val_epe"] == pytest.approx(summary["correction"]["val_epe"])
    md = open(os.path.join(workdir, "summary.md")).read()
    assert "IFT + Jacobian reg." in md and "reproduced here?" in md


def test_settings_share_seed_data_and_budget(ablation_run):
    workdir, _ = ablation_run
    cfgs = {n: json.load(open(os.path.join(workdir, n, "config.json"))) for n in SETTINGS}
    for key in ("seed", "num_steps", "batch_size", "lr", "data"):
        assert len({json.dumps(c[key], sort_keys=True) for c in cfgs.values()}) == 1, key
    assert {c["deq"]["f_max_steps"] for c in cfgs.values()} == {6}
    assert {c["deq"]["f_solver"] for c in cfgs.values()} == {"anderson"}
    assert [cfgs[n]["deq"]["grad"] for n in SETTINGS] == ["ift", "ift", "phantom"]
    # the zero-flow EPE is a property of the shared validation pairs alone
    zero = {json.loads(l)["zero_epe"] for n in SETTINGS
            for l in open(os.path.join(workdir, n, "train.jsonl")) if '"val"' in l}
    assert len({round(z, 5) for z in zero}) == 1


def test_jacobian_penalty_lowers_the_frobenius_norm(ablation_run):
    """Same seed, data and steps: the penalised model ends with a much smaller ||J||_F^2."""
    _, summary = ablation_run
    with_penalty, without = summary["ift_jac"]["jac_fro"], summary["ift"]["jac_fro"]
    assert with_penalty < 0.5 * without, (with_penalty, without)
