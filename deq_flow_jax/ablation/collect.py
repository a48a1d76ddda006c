"""Collects the ablation runs' logs into CSV/JSONL tables, summary numbers and a verdict.

Inputs are the runs' `train.jsonl` files (contract 5) and, when present, each run's
`diagnostics.json` (final-model ||J||_F^2 and spectral radius, see `probe.py`).
Outputs, in the ablation workdir:

* `<setting>/log.csv`: that run's log as a table (one row per JSONL line);
* `ablation.jsonl`, `ablation.csv`: every run's lines with a `setting` column;
* `summary.json`, `summary.md`: per-setting numbers and the qualitative checks.

All files are written atomically (temporary file, then rename).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Mapping, Sequence

from deq_flow_jax.ablation.settings import LABELS
from deq_flow_jax.io.common import dumps_json
from deq_flow_jax.train.curves import read_jsonl, series

# Summary columns: (key, header, format).
COLUMNS = (
    ("steps", "steps", "{:d}"),
    ("final_loss", "final loss", "{:.3f}"),
    ("val_epe", "val EPE", "{:.3f}"),
    ("best_val_epe", "best val EPE", "{:.3f}"),
    ("zero_epe", "zero-flow EPE", "{:.3f}"),
    ("f_rel_start", "f_rel start", "{:.2e}"),
    ("f_rel_end", "f_rel end", "{:.2e}"),
    ("f_rel_growth", "f_rel end/start", "{:.2f}"),
    ("f_nstep", "f_nstep", "{:.1f}"),
    ("b_rel_end", "b_rel end", "{:.2e}"),
    ("sradius_end", "sradius (log)", "{:.3f}"),
    ("jac_fro", "final ||J||_F^2", "{:.4f}"),
    ("sradius_final", "final sradius", "{:.3f}"),
    ("steps_per_s", "steps/s", "{:.2f}"),
    ("skipped", "skipped", "{:d}"),
)


def read_json(path: str):
    """The JSON value stored in `path` (the file is closed before returning)."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def atomic_write_text(path: str, text: str) -> str:
    """Writes `text` to `path` through a temporary file in the same folder."""
    from deq_flow_jax.io.common import atomic_write_text as write
    return write(path, text)


def _window_mean(values: Sequence[float], first: bool, frac: float = 0.25) -> float:
    if not values:
        return float("nan")
    n = max(1, int(round(len(values) * frac)))
    part = values[:n] if first else values[-n:]
    return float(sum(part) / len(part))


def summarize_run(records: Sequence[dict], diagnostics: Mapping[str, float] | None = None) -> dict:
    """Summary numbers of one run.

    `f_rel_start` / `f_rel_end` are the mean forward relative residual over the first / last
    quarter of the train lines; `f_rel_growth` their ratio (> 1: the residual rose during
    training, the paper's instability). Validation numbers are those of the last val line.
    """
    out: dict = {}
    train_steps, loss = series(records, "train", "loss")
    out["steps"] = max([int(r["step"]) for r in records], default=0)
    out["final_loss"] = loss[-1] if loss else float("nan")
    _, rel = series(records, "train", "f_rel")
    out["f_rel_start"] = _window_mean(rel, first=True)
    out["f_rel_end"] = _window_mean(rel, first=False)
    out["f_rel_growth"] = out["f_rel_end"] / out["f_rel_start"] if rel and out["f_rel_start"] > 0 else float("nan")
    _, nstep = series(records, "train", "f_nstep")
    out["f_nstep"] = _window_mean(nstep, first=False)
    _, b_rel = series(records, "train", "b_rel")
    out["b_rel_end"] = _window_mean(b_rel, first=False)
    _, srad = series(records, "train", "sradius")
    out["sradius_end"] = srad[-1] if srad else float("nan")
    _, jac = series(records, "train", "jac_loss")
    out["jac_loss_end"] = jac[-1] if jac else float("nan")
    _, sps = series(records, "train", "steps_per_s")
    out["steps_per_s"] = _window_mean(sps, first=False, frac=0.5)
    _, skipped = series(records, "train", "skipped")
    out["skipped"] = int(skipped[-1]) if skipped else 0
    _, vepe = series(records, "val", "epe")
    out["val_epe"] = vepe[-1] if vepe else float("nan")
    out["best_val_epe"] = min(vepe) if vepe else float("nan")
    _, zero = series(records, "val", "zero_epe")
    out["zero_epe"] = zero[-1] if zero else float("nan")
    for key in ("1px", "3px", "5px"):
        _, v = series(records, "val", key)
        out[f"val_{key}"] = v[-1] if v else float("nan")
    diagnostics = diagnostics or {}
    out["jac_fro"] = float(diagnostics.get("jac_fro", float("nan")))
    out["sradius_final"] = float(diagnostics.get("sradius", float("nan")))
    return out


def verdict(summary: Mapping[str, Mapping[str, float]]) -> list[tuple[str, bool | None, str]]:
    """Checks the paper's qualitative findings on the measured numbers.

    Returns `(claim, held, evidence)` triples; `held` is None when a setting is missing or a
    number is not finite.
    """
    def get(name, key):
        v = summary.get(name, {}).get(key, float("nan"))
        return v if isinstance(v, (int, float)) and math.isfinite(v) else None

    def g(v):
        return "-" if v is None else f"{v:.3g}"

    out = []
    g_ift, g_jac, g_cor = (get(n, "f_rel_growth") for n in ("ift", "ift_jac", "correction"))
    e_ift, e_jac, e_cor = (get(n, "val_epe") for n in ("ift", "ift_jac", "correction"))
    out.append(("IFT: the forward residual rises during training (end/start > 1)",
                None if g_ift is None else g_ift > 1.0, f"IFT f_rel end/start {g(g_ift)}"))
    out.append(("Jacobian regularisation keeps the residual lower than IFT at the end",
                None if None in (get("ift", "f_rel_end"), get("ift_jac", "f_rel_end"))
                else get("ift_jac", "f_rel_end") < get("ift", "f_rel_end"),
                f"f_rel end {g(get('ift_jac', 'f_rel_end'))} vs IFT {g(get('ift', 'f_rel_end'))}"))
    out.append(("Jacobian regularisation costs EPE (val EPE above the correction run)",
                None if None in (e_jac, e_cor) else e_jac > e_cor, f"val EPE {g(e_jac)} vs correction {g(e_cor)}"))
    out.append(("Fixed-point correction keeps the residual lower than IFT at the end",
                None if None in (get("ift", "f_rel_end"), get("correction", "f_rel_end"))
                else get("correction", "f_rel_end") < get("ift", "f_rel_end"),
                f"f_rel end {g(get('correction', 'f_rel_end'))} vs IFT {g(get('ift', 'f_rel_end'))}"))
    out.append(("Fixed-point correction matches or beats IFT on val EPE",
                None if None in (e_cor, e_ift) else e_cor <= e_ift, f"val EPE {g(e_cor)} vs IFT {g(e_ift)}"))
    return out


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return spec.format(int(value) if spec.endswith("d}") else value)


def summary_markdown(summary: Mapping[str, Mapping[str, float]], header: str = "") -> str:
    """Renders the per-setting table and the verdict as markdown."""
    lines = [header] if header else []
    lines.append("| setting | " + " | ".join(h for _, h, _ in COLUMNS) + " |")
    lines.append("|---" * (len(COLUMNS) + 1) + "|")
    for name, row in summary.items():
        cells = [_fmt(row.get(k), spec) for k, _, spec in COLUMNS]
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    lines += ["", "| paper's finding | reproduced here? | evidence |", "|---|---|---|"]
    for claim, held, evidence in verdict(summary):
        mark = {True: "yes", False: "no", None: "n/a"}[held]
        lines.append(f"| {claim} | {mark} | {evidence} |")
    return "\n".join(lines) + "\n"


def records_csv(records: Sequence[dict], extra: Mapping[str, str] | None = None) -> str:
    """Renders log records as CSV text (columns: extra keys, step, kind, then sorted metrics)."""
    extra = dict(extra or {})
    keys = sorted({k for r in records for k in r} - {"step", "kind"} - set(extra))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*extra, "step", "kind", *keys], extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({**extra, **r})
    return buf.getvalue()


def _jsonable(obj):
    """Replaces non-finite floats by None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def collect(workdir: str, settings: Sequence[str]) -> tuple[dict, dict]:
    """Reads every setting's log and diagnostics under `workdir` and writes the tables.

    Args:
      workdir: the ablation workdir; setting `s` trained in `workdir/s`.
      settings: setting names.

    Returns:
      `(runs, summary)`: setting -> records, and setting -> summary numbers.
    """
    runs, summary = {}, {}
    all_csv, all_jsonl = [], []
    for name in settings:
        run_dir = os.path.join(workdir, name)
        records = read_jsonl(os.path.join(run_dir, "train.jsonl"))
        diag_path = os.path.join(run_dir, "diagnostics.json")
        diagnostics = read_json(diag_path) if os.path.exists(diag_path) else None
        runs[name] = records
        summary[name] = summarize_run(records, diagnostics)
        atomic_write_text(os.path.join(run_dir, "log.csv"), records_csv(records))
        all_jsonl += [dumps_json({"setting": name, **r}) for r in records]
        all_csv += [{"setting": name, **r} for r in records]
    atomic_write_text(os.path.join(workdir, "ablation.jsonl"), "\n".join(all_jsonl) + "\n")
    atomic_write_text(os.path.join(workdir, "ablation.csv"), records_csv(all_csv, extra={"setting": ""}))
    atomic_write_text(os.path.join(workdir, "summary.json"),
                      dumps_json(_jsonable(summary), indent=2, sort_keys=True) + "\n")
    return runs, summary
