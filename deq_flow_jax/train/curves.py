"""Training curves from `train.jsonl` logs, drawn with matplotlib (Agg, PNG).

A training workdir's `train.jsonl` (contract 5, docs/DESIGN.md) holds one JSON object per
line, each with `step` and `kind` (`"train"` or `"val"`). Train lines carry `loss`, `epe`
(pixels), `lr`, `grad_norm`, forward-solve statistics `f_nstep`, `f_abs`, `f_rel`, and
optionally `b_*`, `jac_loss`, `sradius`; validation lines carry `epe`, `1px`, `3px`, `5px`,
`zero_epe`, `f_nstep`, `f_rel`, `f_abs`.

Two figures:

* `plot_training_curves(jsonl, png)`: one run, four panels (loss, EPE train/val against the
  zero-flow EPE, forward relative residual, solver steps).
* `plot_convergence_figure(runs, png)`: several runs side by side in the style of the
  DEQ-Flow paper's supplementary Fig. 1: (a) the forward solver's relative residual over
  training steps, (b) validation EPE.

PNG files are written to a temporary name and renamed, so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import math
import os
from typing import Mapping, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Record = dict


def read_jsonl(path: str | os.PathLike) -> list[Record]:
    """Reads a `train.jsonl` log.

    Lines that are empty or not valid JSON (a run killed mid-write) are skipped. When a run
    was resumed from a checkpoint, the steps it re-ran appear twice; the later line wins, so
    the result holds one record per `(kind, step)`, sorted by step.

    Args:
      path: the JSONL file.

    Returns:
      The records, sorted by `(step, kind)`.

    Raises:
      FileNotFoundError: naming `path` when it does not exist.
      ValueError: when a valid JSON line lacks `step` or `kind`.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"training log not found: {path}")
    latest: dict[tuple[str, int], Record] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a truncated last line from a killed run
            if not isinstance(rec, dict) or "step" not in rec or "kind" not in rec:
                raise ValueError(f"{path}:{lineno}: every line needs 'step' and 'kind', got {line[:80]!r}")
            latest[(str(rec["kind"]), int(rec["step"]))] = rec
    return [latest[k] for k in sorted(latest, key=lambda k: (k[1], k[0]))]


def series(records: Sequence[Record], kind: str, key: str) -> tuple[list[int], list[float]]:
    """Extracts `(steps, values)` of `key` from the records of one `kind`, finite values only."""
    steps, values = [], []
    for rec in records:
        if rec.get("kind") != kind or key not in rec or rec[key] is None:
            continue
        try:
            v = float(rec[key])
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            steps.append(int(rec["step"]))
            values.append(v)
    return steps, values


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> str:
    """Saves a figure as PNG atomically (temp file in the same folder, then rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    from deq_flow_jax.io.common import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def running_mean(values: Sequence[float], k: int) -> np.ndarray:
    """Means of the `len(values) - k + 1` windows of `k` consecutive values."""
    v = np.asarray(values, np.float64)
    if k < 1 or k > len(v):
        raise ValueError(f"running_mean: window {k} for {len(v)} values")
    c = np.cumsum(np.concatenate([[0.0], v]))
    return (c[k:] - c[:-k]) / k


def _plot_line(ax, steps, values, label=None, log=False, **kw):
    if not steps:
        return False
    ax.plot(steps, values, label=label, **kw)
    if log and all(v > 0 for v in values):
        ax.set_yscale("log")
    return True


def plot_training_curves(jsonl: str | os.PathLike, png: str | os.PathLike, title: str | None = None) -> str:
    """Plots one run's training curves into a 2x2 PNG.

    Panels: training loss; EPE (train, with a running mean on long runs; validation and the
    zero-flow EPE of the validation pairs, also those of each `config.data.extra_val` set,
    kind `val/NAME`; pixels); forward relative residual (train and validation, log scale);
    forward solver steps.

    Args:
      jsonl: the run's `train.jsonl`.
      png: output path.
      title: figure title (default: the run folder's name).

    Returns:
      `png` as a string.
    """
    records = read_jsonl(jsonl)
    if not records:
        raise ValueError(f"{os.fspath(jsonl)}: no log records to plot")
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    (a_loss, a_epe), (a_rel, a_nstep) = axes
    _plot_line(a_loss, *series(records, "train", "loss"), label="train loss", log=True)
    a_loss.set_title("training loss")
    steps, epe = series(records, "train", "epe")
    _plot_line(a_epe, steps, epe, label="train EPE", alpha=0.35 if len(epe) > 50 else 0.7)
    if len(epe) > 50:          # long runs: the noisy per-log EPE gets a running mean on top
        k = max(5, len(epe) // 40)
        _plot_line(a_epe, steps[k - 1:], list(running_mean(epe, k)),
                   label=f"train EPE, mean of {k} logs", color="C0")
    _plot_line(a_epe, *series(records, "val", "epe"), label="val EPE", marker="o")
    _plot_line(a_epe, *series(records, "val", "zero_epe"), label="val zero-flow EPE", ls="--", color="gray")
    for kind in sorted({str(r["kind"]) for r in records if str(r["kind"]).startswith("val/")}):
        name = kind.split("/", 1)[1]            # config.data.extra_val sets
        (line,) = a_epe.plot(*series(records, kind, "epe"), marker="s", label=f"{name} EPE")
        _plot_line(a_epe, *series(records, kind, "zero_epe"), label=f"{name} zero-flow EPE",
                   ls=":", marker="x", color=line.get_color())
    a_epe.set_title("end-point error (px)")
    _plot_line(a_rel, *series(records, "train", "f_rel"), label="train", log=True)
    _plot_line(a_rel, *series(records, "val", "f_rel"), label="val", marker="o", log=True)
    a_rel.set_title("forward relative residual")
    _plot_line(a_nstep, *series(records, "train", "f_nstep"), label="train")
    _plot_line(a_nstep, *series(records, "val", "f_nstep"), label="val", marker="o")
    a_nstep.set_title("forward solver steps")
    for ax in axes.flat:
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title or os.path.basename(os.path.dirname(os.path.abspath(os.fspath(jsonl)))))
    fig.tight_layout()
    return save_figure(fig, png)


def plot_convergence_figure(
    runs: Mapping[str, Sequence[Record]],
    png: str | os.PathLike,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> str:
    """Writes `convergence_figure(runs, labels, title)` to `png`; returns `png` as a string."""
    return save_figure(convergence_figure(runs, labels, title), png)


def convergence_figure(
    runs: Mapping[str, Sequence[Record]],
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
):
    """Draws the paper's Fig. 1 layout for several runs.

    (a) relative residual ||f(z)-z|| / ||f(z)|| of the forward solve over training steps
    (train lines, log scale); (b) validation EPE over training steps, with the zero-flow EPE
    of the same pairs as a grey dashed reference.

    Args:
      runs: setting name -> records (as from `read_jsonl`).
      labels: optional display names per setting.
      title: optional figure title.

    Returns:
      The matplotlib figure (axes 0: residual, axes 1: validation EPE).
    """
    if not runs:
        raise ValueError("plot_convergence_figure: no runs given")
    labels = dict(labels or {})
    fig, (a_rel, a_epe) = plt.subplots(1, 2, figsize=(11, 4))
    zero_drawn = False
    for name, records in runs.items():
        label = labels.get(name, name)
        color = a_rel.plot(*series(records, "train", "f_rel"), label=label)[0].get_color()
        a_epe.plot(*series(records, "val", "epe"), marker="o", label=label, color=color)
        zs, zv = series(records, "val", "zero_epe")
        if zs and not zero_drawn:
            a_epe.plot(zs, zv, ls="--", color="gray", label="zero flow")
            zero_drawn = True
    a_rel.set_yscale("log")
    a_rel.set_title("(a) forward relative residual during training")
    a_rel.set_ylabel("||f(z)-z|| / ||f(z)||")
    a_epe.set_title("(b) validation EPE")
    a_epe.set_ylabel("EPE (px)")
    for ax in (a_rel, a_epe):
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
