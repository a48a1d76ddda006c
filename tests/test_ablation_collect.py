"""Ablation settings and log collection on hand-made logs (no training)."""
import csv
import json
import math

import ml_collections
import pytest

from deq_flow_jax.ablation import collect, settings
from deq_flow_jax.ablation.runner import config_from_json, config_to_json


def _base():
    return ml_collections.ConfigDict(dict(
        seed=3, num_steps=10, jac_weight=0.0, jac_every=1, jac_probes=1,
        deq=dict(grad="phantom", n_losses=6, indexing=(4,), phantom_steps=(1,), tau=0.5, f_max_steps=16),
        data=dict(stage="synthetic", crop_size=(32, 48)),
        ablation=dict(settings=("ift", "ift_jac", "correction"), jac_weight=7.0, jac_every=2, jac_probes=3,
                      correction_n_losses=2, correction_phantom_steps=1)))


def test_settings_change_only_the_gradient_rule():
    base = _base()
    cfgs = {n: settings.setting_config(base, n) for n in settings.SETTINGS}
    assert cfgs["ift"].deq.grad == "ift" and cfgs["ift"].deq.n_losses == 1 and cfgs["ift"].jac_weight == 0
    assert cfgs["ift_jac"].deq.grad == "ift" and cfgs["ift_jac"].jac_weight == 7.0
    assert cfgs["ift_jac"].jac_every == 2 and cfgs["ift_jac"].jac_probes == 3
    c = cfgs["correction"]
    assert (c.deq.grad, c.deq.n_losses, c.deq.phantom_steps, c.deq.tau) == ("phantom", 2, (1,), 1.0)
    for cfg in cfgs.values():
        assert cfg.seed == 3 and cfg.num_steps == 10 and cfg.data.crop_size == (32, 48)
        assert cfg.deq.indexing == () and cfg.deq.f_max_steps == 16
    assert base.deq.grad == "phantom" and base.jac_weight == 0.0  # the shared config is untouched
    assert {cfg.ablation.setting for cfg in cfgs.values()} == set(settings.SETTINGS)


def test_settings_reject_bad_input():
    with pytest.raises(ValueError, match="unknown ablation setting 'bptt'"):
        settings.setting_config(_base(), "bptt")
    with pytest.raises(ValueError, match="each must be one of"):
        settings.selected_settings(_base(), "ift,foo")
    assert settings.selected_settings(_base(), " correction,ift ") == ("correction", "ift")
    bad = _base()
    bad.ablation.jac_weight = 0.0
    with pytest.raises(ValueError, match="jac_weight must be > 0"):
        settings.setting_config(bad, "ift_jac")


def test_config_json_round_trip_keeps_tuples():
    cfg = settings.setting_config(_base(), "correction")
    back = config_from_json(config_to_json(cfg))
    assert back.data.crop_size == (32, 48) and back.deq.phantom_steps == (1,)
    assert back.to_dict() == cfg.to_dict()


def _log(run_dir, rel, val_epe):
    run_dir.mkdir(parents=True)
    lines = []
    for s, r in enumerate(rel, 1):
        lines.append({"step": s, "kind": "train", "loss": 1.0 / s, "f_rel": r, "f_nstep": 16,
                      "b_rel": 0.01, "skipped": 0, "steps_per_s": 2.0})
    for s, e in val_epe:
        lines.append({"step": s, "kind": "val", "epe": e, "zero_epe": 5.0, "1px": 0.2, "3px": 0.5, "5px": 0.8})
    (run_dir / "train.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))


def test_collect_summary_and_verdict(tmp_path):
    _log(tmp_path / "ift", [0.01, 0.01, 0.02, 0.04], [(2, 3.0), (4, 2.5)])
    _log(tmp_path / "ift_jac", [0.01, 0.01, 0.01, 0.01], [(2, 3.5), (4, 3.0)])
    _log(tmp_path / "correction", [0.02, 0.01, 0.005, 0.005], [(2, 3.0), (4, 2.0)])
    (tmp_path / "ift_jac" / "diagnostics.json").write_text(json.dumps({"jac_fro": 0.5, "sradius": 0.9}))
    runs, summary = collect.collect(str(tmp_path), settings.SETTINGS)
    s = summary["ift"]
    assert s["steps"] == 4 and s["val_epe"] == 2.5 and s["best_val_epe"] == 2.5 and s["zero_epe"] == 5.0
    assert s["f_rel_start"] == pytest.approx(0.01) and s["f_rel_end"] == pytest.approx(0.04)
    assert s["f_rel_growth"] == pytest.approx(4.0) and math.isnan(s["jac_fro"])
    assert summary["ift_jac"]["jac_fro"] == 0.5 and summary["correction"]["f_rel_growth"] == pytest.approx(0.25)
    held = [h for _, h, _ in collect.verdict(summary)]
    assert held == [True, True, True, True, True]
    md = collect.summary_markdown(summary)
    assert md.count("| yes |") == 5 and "IFT + Jacobian reg." in md
    rows = list(csv.DictReader(open(tmp_path / "ablation.csv")))
    assert len(rows) == 18 and {r["setting"] for r in rows} == set(settings.SETTINGS)
    assert len(list(csv.DictReader(open(tmp_path / "ift" / "log.csv")))) == 6
    assert json.load(open(tmp_path / "summary.json"))["ift"]["jac_fro"] is None
    assert len((tmp_path / "ablation.jsonl").read_text().splitlines()) == 18


def test_verdict_is_unknown_for_missing_settings():
    held = [h for _, h, _ in collect.verdict({"ift": {"f_rel_growth": 0.5}})]
    assert held == [False, None, None, None, None]
