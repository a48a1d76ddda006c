"""The validation protocols of DEQ-Flow / RAFT: chairs, things, sintel, kitti, plus ours:
middlebury, synthetic, layered, photo_pairs.

A protocol is a list of passes (Sintel clean and final, Things clean and final,
...), each one evaluation source (`deq_flow_jax.data.make_eval_source`), a
padding mode, a pooling rule (`aggregate.POOLING_RULES`) and the metrics it prints
(official `evaluate.py`):

| protocol  | passes                     | padding | pooling | printed                                 |
|-----------|----------------------------|---------|---------|-----------------------------------------|
| chairs    | validation (640 pairs)     | sintel  | all     | EPE, 1/3/5 px over all pixels           |
| things    | test clean, final          | sintel  | all     | the same, and with mask (valid, <400)   |
| sintel    | training clean, final      | sintel  | all     | EPE, 1/3/5 px over all pixels           |
| kitti     | training (200 pairs)       | kitti   | per_image | EPE per image averaged, Fl-all        |
| middlebury| training (8 pairs)         | sintel  | per_image | EPE per image averaged, 1/3/5 px      |
| synthetic | validation                 | sintel  | masked  | valid-pixel EPE, 1/3/5 px, Fl, noc / occ|
| layered   | validation (held-out photos)| sintel | masked  | the same (rendered, no download)        |
| photo_pairs | validation (homographies) | sintel  | masked  | the same (rendered, no download)        |
| pairs     | your list of pairs (`--pairs`) | sintel | per_image | EPE per image averaged, 1/3/5 px, Fl-all |

`evaluate_source` runs one pass and returns the canonical metrics under the pass's
pooling rule (`summary`: epe, 1px, 3px, 5px, fl_all), every pool's metrics (`metrics`,
see `MetricAccumulator`), solver statistics (None for an estimator without a solver, `baselines.BaselineEstimator`), and
optionally per-frame records. The training loop's validation (`deq_flow_jax.train.validate`) runs the same function with
the protocol of its validation set (`protocol_for`).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Optional

import numpy as np

from deq_flow_jax.evaluate.aggregate import POOLING_RULES, MetricAccumulator
from deq_flow_jax.evaluate.sequence import SequenceEstimator
from deq_flow_jax.metrics import MAX_FLOW, METRIC_NAMES


@dataclasses.dataclass(frozen=True)
class Pass:
    """One evaluation pass: a label and the arguments of `make_eval_source`."""

    label: str
    name: str
    split: str
    kwargs: tuple = ()


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A benchmark's validation protocol (see the module table)."""

    name: str
    passes: tuple
    pad_mode: str
    pooling: str             # a key of aggregate.POOLING_RULES: how `summary` pools
    headline: tuple          # keys printed in the table: summary's, then extra pools'

    def __post_init__(self):
        if self.pooling not in POOLING_RULES:
            raise ValueError(f"protocol {self.name}: unknown pooling {self.pooling!r}")


_NPX = ("epe", "1px", "3px", "5px")
_MASKED = ("epe_masked", "1px_masked", "3px_masked", "5px_masked")

PROTOCOLS = {
    "chairs": Protocol("chairs", (Pass("chairs", "chairs", "validation"),), "sintel", "all", _NPX),
    "things": Protocol("things", (Pass("clean", "things", "test", (("dstype", "clean"),)),
                                  Pass("final", "things", "test", (("dstype", "final"),))),
                       "sintel", "all", _NPX + _MASKED),
    "sintel": Protocol("sintel", (Pass("clean", "sintel", "training", (("dstype", "clean"),)),
                                  Pass("final", "sintel", "training", (("dstype", "final"),))),
                       "sintel", "all", _NPX),
    "kitti": Protocol("kitti", (Pass("kitti", "kitti", "training"),), "kitti", "per_image",
                      ("epe", "fl_all")),
    # Middlebury's published tables average each sequence's EPE over its known pixels
    "middlebury": Protocol("middlebury", (Pass("middlebury", "middlebury", "training"),), "sintel",
                           "per_image", _NPX),
    "synthetic": Protocol("synthetic", (Pass("synthetic", "synthetic", "validation"),), "sintel",
                          "masked", METRIC_NAMES + ("epe_noc", "epe_occ")),
    # rendered on the fly (data/layered_source.py): held-out photographs, no download
    "layered": Protocol("layered", (Pass("layered", "layered", "validation"),), "sintel",
                        "masked", METRIC_NAMES + ("epe_noc", "epe_occ")),
    "photo_pairs": Protocol("photo_pairs", (Pass("photo_pairs", "photo_pairs", "validation"),),
                            "sintel", "masked", METRIC_NAMES + ("epe_noc", "epe_occ")),
    # a list file of the user's own pairs (data/pair_list.py): `deq-flow eval --pairs LIST`, whose
    # source factory opens it (make_eval_source does not)
    "pairs": Protocol("pairs", (Pass("pairs", "pairs", "validation"),), "sintel", "per_image",
                      _NPX + ("fl_all",)),
}


def protocol_for(dataset: str) -> Protocol:
    """The protocol of an evaluation dataset name (`make_eval_source`'s `name`).

    Variants share their family's protocol: "synthetic_video" -> synthetic, "kitti..." ->
    kitti. Raises ValueError for a name no protocol covers.
    """
    if dataset in PROTOCOLS:
        return PROTOCOLS[dataset]
    for name in PROTOCOLS:
        if dataset.startswith(name):
            return PROTOCOLS[name]
    raise ValueError(f"no evaluation protocol for dataset {dataset!r}; expected one of "
                     f"{sorted(PROTOCOLS)} (or a variant such as synthetic_video)")


def _stat_summary(values) -> dict:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"mean": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}


def evaluate_source(estimator, source, *, pooling: str = "masked", reuse: str = "none",
                    limit: Optional[int] = None, max_flow: float = MAX_FLOW,
                    per_frame: bool = False, progress: bool = True, desc: str = "eval",
                    on_frame: Optional[Callable] = None) -> dict:
    """Evaluates flow on one source of pairs with ground truth.

    Args:
        estimator: callable(image1, image2, *, flow_init=None, cache=None) -> Estimate; one
            whose `has_solver` attribute is False (a classical baseline) gets no solver
            statistics.
        source: random-access items {"image1", "image2", "flow", "valid", "meta"}
            (see `make_eval_source`).
        pooling: the rule of `summary` (a key of `aggregate.POOLING_RULES`; a protocol's
            `pooling`).
        reuse: "none" (official protocols), or "reuse" / "warm" along each scene
            (consecutive `meta["frame"]` of one `meta["scene"]`).
        limit: evaluate only the first `limit` pairs.
        max_flow: |gt| cut-off of the masked metrics.
        per_frame: include a list of per-frame records in the result.
        progress: tqdm progress bar.
        desc: progress-bar label.
        on_frame: optional callback(index, item, estimate) (e.g. to save panels).

    Returns:
        {"summary": {epe, 1px, 3px, 5px, fl_all} (MetricAccumulator.summary(pooling)),
        "pooling": pooling, "metrics": {...MetricAccumulator.result()},
        "solver": {"steps": {mean, min, max}, "nstep": ..., "abs_residual": ...,
        "rel_residual": ...} (None without a solver), "seconds_per_pair": float, "n_pairs": int,
        "frames": [...] (with per_frame)}.
    """
    from tqdm import tqdm

    if pooling not in POOLING_RULES:
        raise ValueError(f"{desc}: unknown pooling {pooling!r}; expected one of {sorted(POOLING_RULES)}")
    n = len(source) if limit is None else min(int(limit), len(source))
    if n == 0:
        raise ValueError(f"{desc}: the evaluation source is empty")
    acc = MetricAccumulator(max_flow)
    has_solver = getattr(estimator, "has_solver", True)
    if not has_solver and reuse != "none":
        raise ValueError(f"{desc}: reuse {reuse!r} needs a solver; this estimator has none")
    seq = SequenceEstimator(estimator, reuse)
    records, prev_key = [], None
    t_start = time.perf_counter()
    for i in tqdm(range(n), desc=desc, unit="pair", disable=not progress):
        item = source[i]
        if "flow" not in item:
            raise ValueError(f"{desc}: item {i} has no ground-truth flow (a test split?)")
        meta = dict(item.get("meta", {}))
        key = (meta.get("scene"), meta.get("frame"))
        if prev_key is None or key[0] != prev_key[0] or key[1] is None or prev_key[1] is None \
                or key[1] != prev_key[1] + 1:
            seq.reset()
        prev_key = key
        est = seq(np.asarray(item["image1"])[None], np.asarray(item["image2"])[None])
        frame_metrics = acc.add(est.flow[0], item["flow"], item.get("valid"), item.get("occlusion"))
        rec = {"index": i, "scene": meta.get("scene"), "frame": meta.get("frame"), **frame_metrics}
        if "id" in meta:
            rec["id"] = meta["id"]
        if has_solver:
            rec.update(steps=int(est.steps[0]), nstep=int(est.nstep[0]),
                       abs_residual=float(est.abs_residual[0]),
                       rel_residual=float(est.rel_residual[0]), converged=bool(est.converged[0]))
        rec["seconds"] = float(est.seconds)
        records.append(rec)
        if on_frame is not None:
            on_frame(i, item, est)
    total = time.perf_counter() - t_start
    out = {
        "summary": acc.summary(pooling),
        "pooling": pooling,
        "metrics": acc.result(),
        "solver": ({k: _stat_summary([r[k] for r in records])
                    for k in ("steps", "nstep", "abs_residual", "rel_residual")} if has_solver else None),
        "seconds_per_pair": total / n,
        "n_pairs": n,
    }
    if per_frame:
        out["frames"] = records
    return out


def run_protocol(estimator_factory, protocol: str, *, data_dir: str, source_factory=None,
                 **kw) -> dict:
    """Runs every pass of a protocol.

    Args:
        estimator_factory: callable(pad_mode) -> estimator.
        protocol: a key of PROTOCOLS.
        data_dir: dataset root passed to the source factory.
        source_factory: callable(name, split, *, data_dir, **kwargs) -> source;
            default `deq_flow_jax.data.make_eval_source`.
        **kw: passed to `evaluate_source`.

    Returns:
        {"protocol": name, "pad_mode": ..., "passes": {label: evaluate_source result}}.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown dataset {protocol!r}; expected one of {sorted(PROTOCOLS)}")
    proto = PROTOCOLS[protocol]
    if source_factory is None:
        from deq_flow_jax.data import make_eval_source as source_factory
    estimator = estimator_factory(proto.pad_mode)
    results = {}
    for p in proto.passes:
        source = source_factory(p.name, p.split, data_dir=data_dir, **dict(p.kwargs))
        results[p.label] = evaluate_source(estimator, source, pooling=proto.pooling,
                                           desc=f"{protocol}/{p.label}", **kw)
    return {"protocol": protocol, "pad_mode": proto.pad_mode, "pooling": proto.pooling,
            "headline": list(proto.headline), "passes": results}


def format_table(result: dict) -> str:
    """A human-readable table of `run_protocol`'s result: one row per pass.

    Headline keys are looked up in the pass's `summary` (the protocol's pooling) first,
    then in its `metrics` (the other pools); n-px and Fl-all are percentages.
    """
    keys = result["headline"]
    head = ["pass"] + [k if "epe" in k else f"{k}%" for k in keys] + ["steps", "s/pair"]
    rows = []
    for label, r in result["passes"].items():
        m = {**r["metrics"], **r["summary"]}
        steps = "-" if r["solver"] is None else f"{r['solver']['steps']['mean']:.1f}"
        rows.append([label] + [f"{m[k]:.3f}" if "epe" in k else f"{m[k]:.2f}" for k in keys]
                    + [steps, f"{r['seconds_per_pair']:.3f}"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])
