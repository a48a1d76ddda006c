"""Training-curve plots from hand-made `train.jsonl` logs (deq_flow_jax.train.curves)."""
import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from deq_flow_jax.train import curves


def _write(path, records, tail=""):
    with open(path, "w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
        fh.write(tail)


def _run(rel_scale, n=10, val_every=5):
    recs = []
    for s in range(1, n + 1):
        recs.append({"step": s, "kind": "train", "loss": 10.0 / s, "epe": 5.0 / s, "lr": 1e-4,
                     "f_nstep": 16, "f_abs": 0.1, "f_rel": rel_scale * s, "b_rel": 0.0})
        if s % val_every == 0:
            recs.append({"step": s, "kind": "val", "epe": 4.0 / s, "zero_epe": 6.0, "1px": 0.1,
                         "3px": 0.5, "5px": 0.7, "f_nstep": 24, "f_rel": 0.01, "f_abs": 0.1})
    return recs


def test_read_jsonl_dedupes_resumed_steps_and_skips_truncated_line(tmp_path):
    recs = _run(0.01, n=4, val_every=2)
    # a resumed run re-logs steps 3 and 4 with new values; the file ends mid-line (SIGKILL)
    again = [{"step": 3, "kind": "train", "loss": 99.0}, {"step": 4, "kind": "train", "loss": 98.0}]
    p = tmp_path / "train.jsonl"
    _write(p, recs + again, tail='{"step": 5, "kind": "tr')
    out = curves.read_jsonl(p)
    train = [r for r in out if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert train[2]["loss"] == 99.0 and train[3]["loss"] == 98.0
    assert [r["step"] for r in out if r["kind"] == "val"] == [2, 4]


def test_read_jsonl_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        curves.read_jsonl(tmp_path / "missing.jsonl")
    p = tmp_path / "bad.jsonl"
    _write(p, [{"step": 1, "loss": 2.0}])
    with pytest.raises(ValueError, match=r"bad.jsonl:1: every line needs"):
        curves.read_jsonl(p)


def test_series_drops_non_finite_values():
    recs = [{"step": 1, "kind": "train", "loss": 1.0}, {"step": 2, "kind": "train", "loss": float("nan")},
            {"step": 3, "kind": "train", "loss": None}, {"step": 4, "kind": "val", "loss": 3.0},
            {"step": 5, "kind": "train", "loss": 0.5}]
    assert curves.series(recs, "train", "loss") == ([1, 5], [1.0, 0.5])


def test_convergence_figure_draws_each_setting(tmp_path):
    runs = {"ift": _run(0.01), "jac": _run(0.001), "phantom": _run(0.0001)}
    fig = curves.convergence_figure(runs, labels={"ift": "IFT"})
    a_rel, a_epe = fig.axes
    assert [l.get_label() for l in a_rel.lines] == ["IFT", "jac", "phantom"]
    np.testing.assert_allclose(a_rel.lines[1].get_ydata(), 0.001 * np.arange(1, 11))
    np.testing.assert_array_equal(a_epe.lines[0].get_xdata(), [5, 10])
    np.testing.assert_allclose(a_epe.lines[0].get_ydata(), [0.8, 0.4])
    assert "zero flow" in [l.get_label() for l in a_epe.lines]
    assert a_rel.get_yscale() == "log"
    png = curves.save_figure(fig, tmp_path / "sub" / "fig1.png")
    img = mpimg.imread(png)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 200
    assert not list((tmp_path / "sub").glob(".tmp_*"))


def test_plot_training_curves_writes_png(tmp_path):
    p = tmp_path / "run" / "train.jsonl"
    p.parent.mkdir()
    _write(p, _run(0.01))
    png = curves.plot_training_curves(p, tmp_path / "curves.png")
    assert mpimg.imread(png).shape[0] > 100
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no log records"):
        curves.plot_training_curves(empty, tmp_path / "x.png")


def test_running_mean_matches_windows():
    v = [1.0, 3.0, 2.0, 6.0, 4.0]
    np.testing.assert_allclose(curves.running_mean(v, 2), [2.0, 2.5, 4.0, 5.0])
    np.testing.assert_allclose(curves.running_mean(v, 5), [3.2])
    with pytest.raises(ValueError, match="window 6"):
        curves.running_mean(v, 6)
