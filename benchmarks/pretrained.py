"""A trained model against zero flow and OpenCV on held-out photographs and a real stereo pair.

    python benchmarks/pretrained.py --checkpoint runs/layered --out pretrained.json
    python benchmarks/pretrained.py --checkpoint runs/layered --quick        # 4 + 4 + 1 pairs
    python benchmarks/pretrained.py --out baselines.json                     # baselines only
    python benchmarks/pretrained.py --pretrained --quick --panel docs/pretrained_panel.png

Evaluation sets (none of their photographs is used for training, see docs/data_layered.md):
  layered      the rendered `layered` validation split (held-out photographs, 64 pairs);
  photo_pairs  held-out photographs under a known global homography (32 pairs);
  motorcycle   skimage's Middlebury stereo pair, flow = (-disparity, 0), unknown
               disparities invalid (SPEC 7), occlusion from the disparity
               (`photos.stereo_occlusion`);
  translations the 3 held-out photographs, each as 5 pairs of windows an integer shift apart
               (`photos.TRANSLATION_SHIFTS`: 0, 1, 4, 16, 32 px; `photos.translation_pair`):
               exact flow, no resampling, no photometric change, so any error is the
               method's own imprecision (15 pairs; not drawn in the panel);
  large_motions the same photographs and windows, shifted by `photos.LARGE_SHIFTS` (48, 64,
               96, 128, 160 px: a tenth to two fifths of the frame; 15 pairs, not drawn);
  large_warps  the 3 held-out photographs under large motions that are not translations
               (`layered.LARGE_WARPS`: zoom in and out by 1.28x, a 12 degree roll, forward
               motion, and zoom, roll and zoom each with a pan of 60-120 px; mean motion
               36-121 px; `layered.render_warp_pair`, photometric changes as photo_pairs;
               21 pairs, not drawn).
Opt-in sets of real photographs with known motion, from OpenCV's sample data (not in this
repository: `--opencv-data DIR`, default $OPENCV_SAMPLES_DATA_PATH, else Debian's opencv-doc
folder; `deq_flow_jax.data.opencv_samples`):
  aloe         Middlebury's 2006 stereo pair Aloe, flow = (-disparity, 0), at half and third
               size (641x555 and 427x370; disparities up to 106 and 70 px; 2 pairs);
  graffiti     Oxford's Graffiti 1 -> 3, a wall seen from two viewpoints, flow = its homography,
               at full and half size (800x640 and 400x320; mean motion 110 and 55 px; 2 pairs).
Methods: the model (`--checkpoint`, a model directory or a training workdir, solver from
the workdir's config unless given; its flow refined, and its solver started as the checkpoint
or `--refine` / `--start` say, and then also `model_plain`, the model's flow from the zero
start, unrefined), zero flow, OpenCV DIS (preset
MEDIUM) and OpenCV Farneback (pyr_scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5,
sigma 1.2).
Metrics (`deq_flow_jax.evaluate.aggregate.MetricAccumulator`, pooled over all valid pixels
of a set): EPE in pixels and 1px / 3px / 5px as percent of valid pixels with EPE below 1 / 3 /
5; the EPE over the valid pixels that stay visible in frame 2 (`epe_noc`) and over those
hidden there or leaving it (`epe_occ`, Sintel's "unmatched"), and by ground-truth speed
(`epe_s0-10`, `epe_s10-40`, `epe_s40+`, Sintel's bins); each pair's EPE too
(`per_pair_epe`), and the table counts the pairs where the model's EPE is below DIS's and
Farneback's. Per pair (`pairs`): the photographs shown, the mean ground-truth motion and the
flat fraction, the share of frame-1 pixels whose 7x7 grey-level standard deviation is below 3
(`layered.local_contrast`: sky, walls, shaded surfaces); the table splits each set's pairs into
flat (flat fraction >= 0.5) and textured ones, with the mean per-pair EPE of each method.
Seconds per pair: mean wall time per layered pair (photo pair without --sets layered;
frame size `--size`), the model's first call (compilation) excluded. Writes one JSON (atomically;
stdout without --out), then a markdown table on stdout. `--panel PNG` also draws the first pair
of the layered, photo_pairs and motorcycle sets: frame 1 | model | DIS medium | ground truth, one colour scale per
row (the ground truth's largest valid motion), each prediction captioned with its EPE.
`--baseline JSON` compares this run's model with an earlier JSON of this script (the same seed,
size, scale and pairs; e.g. the shipped model's, `benchmarks/results/pretrained_*.json`): per set
and for `model` and `model_plain`, both EPEs and 1px, and on how many pairs this run's EPE is the
lower (JSON `baseline`, and a table saying on how many sets the model's EPE is below the
baseline's: the rule for shipping a checkpoint is every set, docs/pretrained.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

METHODS = ("model", "zero", "dis_medium", "farneback")
DEFAULT_SETS = ("layered", "photo_pairs", "motorcycle", "translations", "large_motions", "large_warps")
REAL_SETS = ("aloe", "graffiti")         # opt-in: OpenCV's sample data, the user's copy
SETS = DEFAULT_SETS + REAL_SETS
PANEL_SETS = ("layered", "photo_pairs", "motorcycle") + REAL_SETS
METRIC_KEYS = ("epe", "1px", "3px", "5px")


def parse_args(argv=None):
    from deq_flow_jax.cli import model_args

    p = argparse.ArgumentParser(prog="benchmarks/pretrained.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="model directory or training workdir (omit: baselines only, unless --pretrained)")
    p.add_argument("--pretrained", action="store_true", help="benchmark the shipped pretrained model")
    p.add_argument("--which", choices=("best", "latest"), default="best",
                   help="checkpoint of a training workdir (default best)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the JSON here (default: stdout)")
    p.add_argument("--panel", default=None, metavar="PNG",
                   help="also draw the first pair of each set (translations aside), the methods "
                        "side by side, into PNG (.png or .jpg)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out / --panel file that this script wrote")
    p.add_argument("--quick", action="store_true",
                   help="4 layered + 4 photo pairs + the motorcycle + 5 translations + 5 large "
                        "motions + 7 large warps")
    p.add_argument("--max-pairs", type=int, default=None, metavar="N",
                   help="the first N pairs of each rendered set and translation set (default: "
                        "all; with --quick 4, 5 of each translation set and 7 large warps); 8 photo "
                        "pairs are what cpu_pretrain validates on during training")
    p.add_argument("--size", type=int, nargs=2, default=(384, 512), metavar=("H", "W"),
                   help="frame size of the rendered sets (default 384 512)")
    p.add_argument("--real-scale", type=float, default=1.0,
                   help="resize factor of the motorcycle pair (default 1: 500x741)")
    p.add_argument("--seed", type=int, default=0, help="seed of the rendered sets (default 0)")
    p.add_argument("--baseline", default=None, metavar="JSON",
                   help="an earlier JSON of this script (same seed, size, scale and pairs) to compare "
                        "this run's model with, set by set and pair by pair")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(DEFAULT_SETS),
                   help=f"evaluation sets (default: {', '.join(DEFAULT_SETS)}; "
                        f"{' and '.join(REAL_SETS)} need --opencv-data)")
    p.add_argument("--opencv-data", default=None, metavar="DIR",
                   help="OpenCV's samples/data folder, or where `dpkg -x` unpacked opencv-doc, for "
                        "the aloe and graffiti sets (default: $OPENCV_SAMPLES_DATA_PATH, else "
                        "/usr/share/doc/opencv-doc/examples/data)")
    model_args.add_solver_args(p)
    args = p.parse_args(argv)
    if min(args.size) < 32:
        p.error(f"--size: frames must be at least 32x32, got {args.size[0]}x{args.size[1]}")
    if args.max_pairs is not None and args.max_pairs < 1:
        p.error(f"--max-pairs: must be >= 1, got {args.max_pairs}")
    if not 0 < args.real_scale <= 4:
        p.error(f"--real-scale: must be in (0, 4], got {args.real_scale}")
    return args


PANEL_COMMENT = "deq-flow-jax benchmarks/pretrained.py --panel"


def check_output(args) -> None:
    """Refuses an --out / --panel that overlaps the checkpoint, is a folder, names the same file
    twice, or exists; with --overwrite an existing file is replaced only if this script wrote
    it (a JSON with "benchmark": "pretrained", an image carrying PANEL_COMMENT)."""
    from deq_flow_jax.io.image import COMMENT_EXTENSIONS, image_comment
    from deq_flow_jax.io.outputs import check_no_overlap, check_output_file, json_field

    ours = {"--out": lambda path: json_field(path, "benchmark") == "pretrained",
            "--panel": lambda path: image_comment(path) == PANEL_COMMENT}
    if args.panel and os.path.splitext(args.panel)[1].lower() not in COMMENT_EXTENSIONS:
        raise ValueError(f"--panel {args.panel}: expected a {'/'.join(COMMENT_EXTENSIONS)} file name")
    inputs = [("--checkpoint", args.checkpoint), ("--baseline", args.baseline and os.path.expanduser(args.baseline))]
    wanted = [files for name, (_, _, files) in real_sets().items() if name in args.sets]
    if wanted:       # checked here, before the model loads
        from deq_flow_jax.data.opencv_samples import find_samples_dir
        inputs.append(("--opencv-data", find_samples_dir(args.opencv_data, sum(wanted, ()))))
    if args.pretrained:
        from deq_flow_jax import pretrained
        inputs.append(("--pretrained: the shipped models", pretrained.root()))
    seen = {}
    for flag, path in (("--out", args.out), ("--panel", args.panel)):
        if path is None:
            continue
        path = os.path.expanduser(path)
        check_no_overlap(path, flag, inputs)
        check_output_file(path, args.overwrite, flag, is_ours=ours[flag])
        real = os.path.realpath(path)
        if real in seen:
            raise ValueError(f"{flag} {path}: the same file as {seen[real]}")
        seen[real] = flag


def real_sets() -> dict:
    """{set name: (pair function (folder, scale) -> pair, scales, files it reads)} of REAL_SETS."""
    from deq_flow_jax.data import opencv_samples as ocv

    return {"aloe": (ocv.aloe_pair, ocv.ALOE_SCALES, ocv.ALOE_FILES),
            "graffiti": (ocv.graffiti_pair, ocv.GRAFFITI_SCALES, ocv.GRAFFITI_FILES)}


def opencv_data_record(args, sets) -> dict:
    """{"folder", "sha256": {file: hex digest}} of the OpenCV sample files the real sets read."""
    import hashlib

    from deq_flow_jax.data.opencv_samples import find_samples_dir

    files = sum((f for name, (_, _, f) in real_sets().items() if name in sets), ())
    folder = find_samples_dir(args.opencv_data, files)
    digests = {}
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            digests[name] = hashlib.sha256(f.read()).hexdigest()
    return {"folder": os.path.abspath(folder), "sha256": digests}


def evaluation_sets(args) -> dict:
    """{set name: (number of pairs, function index -> pair)}; pairs (dicts with image1, image2,
    flow, valid) are rendered when asked for, so a set never sits in memory whole."""
    import cv2

    from deq_flow_jax.data.augment import resize_dense
    from deq_flow_jax.data.layered import LARGE_WARPS, LayeredConfig, render_warp_pair
    from deq_flow_jax.data.layered_source import make_layered_source
    from deq_flow_jax.data.opencv_samples import find_samples_dir
    from deq_flow_jax.data.photos import (
        LARGE_SHIFTS,
        TRANSLATION_SHIFTS,
        motorcycle_pair,
        photo_names,
        translation_pair,
    )

    h, w = args.size
    sets = {}
    for name in ("layered", "photo_pairs"):
        if name in args.sets:
            src = make_layered_source(name, "validation", seed=args.seed, height=h, width=w)
            limit = args.max_pairs or (4 if args.quick else len(src))
            sets[name] = (min(len(src), limit), src.__getitem__)
    if "motorcycle" in args.sets:
        moto = motorcycle_pair()
        if args.real_scale != 1.0:
            s = args.real_scale
            i1, i2, flow, valid = resize_dense(moto["image1"], moto["image2"], moto["flow"],
                                               moto["valid"], s, s)
            occ = cv2.resize(moto["occlusion"], (i1.shape[1], i1.shape[0]),
                             interpolation=cv2.INTER_NEAREST)
            moto = dict(moto, image1=i1, image2=i2, flow=flow, valid=valid, occlusion=occ)
        sets["motorcycle"] = (1, lambda i: moto)
    for name, (pair, scales, files) in real_sets().items():    # a pair per scale
        if name in args.sets:
            folder = find_samples_dir(args.opencv_data, files)
            sets[name] = (len(scales), lambda i, pair=pair, scales=scales, folder=folder: pair(folder, scales[i]))
    # the sets of every held-out photograph under each of a list of motions: pair i is photograph
    # i // len(motions) under motion i % len(motions); --quick takes the first photograph's
    names, cfg = photo_names("validation"), LayeredConfig(height=h, width=w)

    def shifted(shifts):
        return lambda i: translation_pair(names[i // len(shifts)], shifts[i % len(shifts)], (h, w))

    per_photo = {"translations": (TRANSLATION_SHIFTS, shifted(TRANSLATION_SHIFTS)),
                 "large_motions": (LARGE_SHIFTS, shifted(LARGE_SHIFTS)),
                 "large_warps": (LARGE_WARPS, lambda i: render_warp_pair(args.seed, i, cfg))}
    for name, (motions, pair) in per_photo.items():
        if name in args.sets:
            count = len(names) * len(motions)
            limit = args.max_pairs or (len(motions) if args.quick else count)
            sets[name] = (min(count, limit), pair)
    return sets


def make_methods(args):
    """{name: callable(image1, image2) -> (flow (H, W, 2) float32, seconds)}, and the model info."""
    from deq_flow_jax.evaluate.baselines import baseline_flow
    from deq_flow_jax.evaluate.refine import grey_frame

    def classical(name):
        def method(i1, i2):       # timed on grey frames: the method alone, not the conversion
            g1, g2 = grey_frame(i1), grey_frame(i2)
            t = time.perf_counter()
            f = baseline_flow(name, g1, g2)
            return f, time.perf_counter() - t
        return method

    methods, info = {}, None
    if args.checkpoint or args.pretrained:
        import dataclasses

        from deq_flow_jax.cli import model_args
        from deq_flow_jax.evaluate.estimator import FlowEstimator
        from deq_flow_jax.evaluate.refine import refine_flow
        from deq_flow_jax.evaluate.starts import CANDIDATES

        variables, cfg, settings = model_args.load_model_and_settings(args)
        estimator = FlowEstimator(variables, cfg, dataclasses.replace(settings, refine="none", start="zero"))
        full = FlowEstimator(variables, cfg, settings)     # for a start other than zero
        last = {}           # the plain estimate of the pair the methods are on

        def model_plain(i1, i2):
            if last.get("i1") is not i1 or last.get("i2") is not i2:
                est = estimator(i1, i2)
                last.update(i1=i1, i2=i2, flow=est.flow[0], seconds=est.seconds)
            return last["flow"], last["seconds"]

        def model(i1, i2):
            if settings.start != "zero":
                est = full(i1, i2)
                return est.flow[0], est.seconds
            flow, seconds = model_plain(i1, i2)
            if settings.refine == "none":
                return flow, seconds
            t = time.perf_counter()
            flow = refine_flow(i1, i2, flow, settings.refine)
            return flow, seconds + time.perf_counter() - t

        methods["model"] = model
        if settings.refine != "none" or settings.start != "zero":
            methods["model_plain"] = model_plain
        info = {"checkpoint": (os.path.abspath(os.path.expanduser(args.checkpoint)) if args.checkpoint
                               else "pretrained"), "which": args.which,
                "variant": getattr(cfg, "name", None), "solver": settings.solver,
                "max_steps": settings.max_steps, "tol": settings.tol, "stop_mode": settings.stop_mode,
                "refine": settings.refine, "start": settings.start,
                "starts": list(CANDIDATES[settings.start])}
        if {"layered", "photo_pairs"} & set(args.sets):   # compile at the timing size
            model(*(np.zeros(tuple(args.size) + (3,), np.uint8),) * 2)
    methods.update(zero=classical("zero"), dis_medium=classical("dis-medium"),
                   farneback=classical("farneback"))
    return methods, info


FLAT_LEVEL, FLAT_WINDOW, FLAT_SPLIT = 3.0, 7, 0.5


def pair_info(ex: dict) -> dict:
    """{photos, flat_fraction, mean_motion} of one pair: the photographs it shows (if known),
    the share of frame-1 pixels with local contrast below FLAT_LEVEL grey levels (window
    FLAT_WINDOW) and the mean ground-truth |flow| over valid pixels (pixels)."""
    from deq_flow_jax.data.layered import local_contrast
    from deq_flow_jax.metrics import valid_mask

    flat = float((local_contrast(ex["image1"], FLAT_WINDOW) < FLAT_LEVEL).mean())
    valid = np.asarray(valid_mask(ex["flow"], ex["valid"]), bool)
    speed = np.linalg.norm(np.asarray(ex["flow"], np.float32), axis=-1)[valid]
    return {"photos": list(ex.get("meta", {}).get("photos", [])), "flat_fraction": flat,
            "mean_motion": float(speed.mean()) if speed.size else None}


def evaluate(methods, sets, firsts: dict | None = None) -> tuple[dict, dict, dict]:
    """Pooled metrics per set and method; mean seconds per pair of the first rendered set
    (layered, else photo_pairs; frames of --size) per method; `pair_info` of every pair per
    set. `firsts`, when given, receives {set: (first pair, {method: flow})} for the panel (PANEL_SETS).

    Metrics pool the valid pixels of all pairs (`MetricAccumulator`, rule "masked"); every
    set has occlusion maps, so `epe_noc` / `epe_occ` split them into pixels that stay visible
    in frame 2 and pixels that are hidden there or leave it; `epe_s0-10`, `epe_s10-40`,
    `epe_s40+` by ground-truth speed."""
    from deq_flow_jax.evaluate.aggregate import SPEED_BINS, MetricAccumulator

    results, seconds, pairs = {}, {}, {}
    timing_set = next((k for k in ("layered", "photo_pairs") if k in sets), None)
    for set_name, (count, get) in sets.items():
        acc = {m: MetricAccumulator() for m in methods}
        per_pair = {m: [] for m in methods}       # each pair's EPE (None: no valid pixel)
        times = {m: [] for m in methods}
        pairs[set_name] = []
        for i in range(count):
            ex = get(i)
            pairs[set_name].append(pair_info(ex))
            for m_name, fn in methods.items():
                pred, sec = fn(ex["image1"], ex["image2"])
                times[m_name].append(sec)
                if firsts is not None and i == 0 and set_name in PANEL_SETS:
                    firsts.setdefault(set_name, (ex, {}))[1][m_name] = pred
                image = acc[m_name].add(pred, ex["flow"], ex["valid"], ex.get("occlusion"))
                per_pair[m_name].append(float(image["epe_masked"]) if image["n_valid"] else None)
        results[set_name] = {}
        for m_name in methods:
            res = acc[m_name].result()
            row = {k: res[f"{k}_masked"] for k in METRIC_KEYS}
            for k in ("epe_noc", "epe_occ") + tuple(f"epe_{b}" for b, _, _ in SPEED_BINS):
                row[k] = res.get(k)
            noc_share = 100.0 * res["n_noc"] / res["n_valid"] if "n_noc" in res and res["n_valid"] else None
            row.update(pairs=count, valid_pixels=int(res["n_valid"]), noc_percent=noc_share,
                       per_pair_epe=per_pair[m_name])
            results[set_name][m_name] = row
            if set_name == timing_set:
                seconds[m_name] = float(np.mean(times[m_name]))
    return results, seconds, pairs


PANEL_HEIGHT = 240
PANEL_METHODS = (("model", "model"), ("dis_medium", "DIS medium"))


def draw_panel(firsts: dict) -> np.ndarray:
    """(H, W, 3) uint8: a row per set (frame 1 | model | DIS medium | ground truth, each
    PANEL_HEIGHT high), flows coloured on the ground truth's largest valid magnitude."""
    import cv2

    from deq_flow_jax.evaluate.flow_colors import flow_to_color, side_by_side
    from deq_flow_jax.metrics import flow_metrics, valid_mask

    rows = []
    for set_name, (ex, preds) in firsts.items():
        gt = np.asarray(ex["flow"], np.float32)
        valid = np.asarray(valid_mask(gt, ex["valid"]), bool)
        scale = float(np.linalg.norm(gt, axis=-1)[valid].max()) if valid.any() else 1.0
        images, labels = [np.asarray(ex["image1"], np.uint8)], [set_name]
        for key, label in PANEL_METHODS:
            if key in preds:
                epe = float(flow_metrics(preds[key], gt, ex["valid"])["epe"])
                images.append(flow_to_color(preds[key], max(scale, 1e-3)))
                labels.append(f"{label}: EPE {epe:.2f}")
        gt_shown = np.where(valid[..., None], gt, 0.0)
        images.append(flow_to_color(gt_shown, max(scale, 1e-3)))
        labels.append("ground truth")
        h, w = images[0].shape[:2]
        size = (max(1, round(w * PANEL_HEIGHT / h)), PANEL_HEIGHT)
        images = [cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images]
        rows.append(side_by_side(images, labels))
    width = max(r.shape[1] for r in rows)
    gap = np.full((4, width, 3), 255, np.uint8)
    out = []
    for i, r in enumerate(rows):
        if i:
            out.append(gap)
        out.append(np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(out, axis=0)


def table(report: dict) -> str:
    """The markdown tables of a report."""
    lines = ["| set | method | EPE (px) | 1px (%) | 3px (%) | 5px (%) | EPE visible | "
             "EPE occluded | pairs |",
             "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, d: "n/a" if v is None else f"{v:.{d}f}"  # noqa: E731
    for set_name, rows in report["results"].items():
        for m_name, r in rows.items():
            lines.append(f"| {set_name} | {m_name} | {fmt(r['epe'], 3)} | {fmt(r['1px'], 1)} | "
                         f"{fmt(r['3px'], 1)} | {fmt(r['5px'], 1)} | {fmt(r.get('epe_noc'), 3)} | "
                         f"{fmt(r.get('epe_occ'), 3)} | {r['pairs']} |")
    lines += ["", "| set | method | EPE s0-10 | EPE s10-40 | EPE s40+ |", "|---|---|---|---|---|"]
    for set_name, rows in report["results"].items():
        for m_name, r in rows.items():
            lines.append(f"| {set_name} | {m_name} | {fmt(r.get('epe_s0-10'), 3)} | "
                         f"{fmt(r.get('epe_s10-40'), 3)} | {fmt(r.get('epe_s40+'), 3)} |")
    wins = []
    for set_name, rows in report["results"].items():
        if "model" not in rows or rows["model"]["pairs"] < 2:
            continue
        for other in ("dis_medium", "farneback"):
            if other in rows:
                wins.append(f"| {set_name} | {other} | {_below(rows['model'], rows[other])} |")
    if wins:
        lines += ["", "| set | model's EPE below that of | pairs |", "|---|---|---|"] + wins
    lines += _texture_table(report, fmt)
    if report["seconds_per_pair"]:
        h, w = report["size"]
        lines += ["", f"| method | seconds per pair at {h}x{w} |", "|---|---|"]
        lines += [f"| {m} | {fmt(s, 4)} |" for m, s in report["seconds_per_pair"].items()]
    return "\n".join(lines)


def _count_below(mine: dict, other: dict, idx=None) -> tuple[int, int]:
    """(K, N): of the N pairs (those in `idx`, else all) where both rows have an EPE, the K
    where `mine`'s is below `other`'s."""
    a_all, b_all = mine["per_pair_epe"], other["per_pair_epe"]
    idx = range(len(a_all)) if idx is None else idx
    both = [(a_all[i], b_all[i]) for i in idx if a_all[i] is not None and b_all[i] is not None]
    return sum(a < b for a, b in both), len(both)


def _below(mine: dict, other: dict, idx=None) -> str:
    """'K of N' of `_count_below`."""
    return "{} of {}".format(*_count_below(mine, other, idx))


def _texture_table(report: dict, fmt) -> list[str]:
    """Rows splitting each set's pairs into flat and textured ones (mean per-pair EPE)."""
    rows = []
    for set_name, info in (report.get("pairs") or {}).items():
        methods = report["results"][set_name]
        flat = [p["flat_fraction"] >= FLAT_SPLIT for p in info]
        if len(info) < 2 or all(flat) or not any(flat):
            continue
        for label, want in ((f"flat (>= {FLAT_SPLIT:.0%} flat pixels)", True), ("textured", False)):
            idx = [i for i, f in enumerate(flat) if f == want]
            means = {}
            for m in ("model", "dis_medium", "farneback", "zero"):
                epes = [methods[m]["per_pair_epe"][i] for i in idx] if m in methods else []
                epes = [e for e in epes if e is not None]
                means[m] = float(np.mean(epes)) if epes else None
            below = "n/a"
            if "model" in methods and "dis_medium" in methods:
                below = _below(methods["model"], methods["dis_medium"], idx)
            rows.append(f"| {set_name} | {label} | {len(idx)} | {fmt(means['model'], 3)} | "
                        f"{fmt(means['dis_medium'], 3)} | {fmt(means['farneback'], 3)} | "
                        f"{fmt(means['zero'], 3)} | {below} |")
    if not rows:
        return []
    return ["", "| set | pairs | n | model | DIS medium | Farneback | zero | model below DIS |",
            "|---|---|---|---|---|---|---|---|"] + rows


BASELINE_METHODS = ("model", "model_plain")


def load_baseline(args, sets: dict) -> dict | None:
    """The --baseline JSON, checked before any work: ValueError (one line naming the flag and
    file) unless it is a JSON of this script with this run's seed, size, scale and --quick, and
    the same number of pairs in every set both have."""
    from deq_flow_jax.io.outputs import json_object
    if args.baseline is None:
        return None
    base = json_object(os.path.expanduser(args.baseline))
    if base is None:
        raise ValueError(f"--baseline {args.baseline}: cannot read it as JSON (missing, unreadable, "
                         "or not a JSON object)")
    if base.get("benchmark") != "pretrained":
        raise ValueError(f"--baseline {args.baseline}: not a JSON written by benchmarks/pretrained.py")
    mine = {"seed": args.seed, "size": list(args.size), "real_scale": args.real_scale,
            "quick": bool(args.quick)}
    for key, want in mine.items():
        if base.get(key) != want:
            raise ValueError(f"--baseline {args.baseline}: its {key} is {base.get(key)!r}, this run's "
                             f"{want!r}; the pairs would differ")
    for name, (count, _) in sets.items():
        if name in base.get("sets", {}) and base["sets"][name] != count:
            raise ValueError(f"--baseline {args.baseline}: it has {base['sets'][name]} {name} pairs, "
                             f"this run {count} (--max-pairs?)")
    if not any(name in base.get("sets", {}) for name in sets):
        raise ValueError(f"--baseline {args.baseline}: it has none of this run's sets")
    return base


def compare_baseline(results: dict, base: dict, path: str) -> dict:
    """This run's `model` / `model_plain` rows against the baseline's, per set both have: EPE,
    1px and the pairs where this run's EPE is the lower (`_below`)."""
    per_set = {}
    for set_name, rows in results.items():
        base_rows = base["results"].get(set_name, {})
        for m in BASELINE_METHODS:
            if m in rows and m in base_rows:
                a, b = rows[m], base_rows[m]
                k, n = _count_below(a, b)
                per_set.setdefault(set_name, {})[m] = {
                    "epe": a["epe"], "baseline_epe": b["epe"], "1px": a["1px"],
                    "baseline_1px": b["1px"], "pairs_below": k, "pairs": n}
    model_sets = [r["model"] for r in per_set.values() if "model" in r]
    return {"file": path, "model": base.get("model"), "sets": per_set,
            "model_epe_below_on": sum(r["epe"] < r["baseline_epe"] for r in model_sets),
            "model_sets": len(model_sets)}


def baseline_table(comp: dict) -> list[str]:
    """Markdown rows of `compare_baseline`'s result."""
    lines = ["", f"| set | method | EPE | baseline EPE | 1px (%) | baseline 1px (%) | pairs below "
                 f"the baseline's ({comp['file']}) |", "|---|---|---|---|---|---|---|"]
    for set_name, rows in comp["sets"].items():
        for m, r in rows.items():
            lines.append(f"| {set_name} | {m} | {r['epe']:.4f} | {r['baseline_epe']:.4f} | "
                         f"{r['1px']:.2f} | {r['baseline_1px']:.2f} | {r['pairs_below']} of {r['pairs']} |")
    lines += ["", f"model's EPE below the baseline's on {comp['model_epe_below_on']} of "
                  f"{comp['model_sets']} sets"]
    return lines


def main(argv=None) -> int:
    from deq_flow_jax.cli.common import CliError
    args = parse_args(argv)
    try:
        check_output(args)
        methods, info = make_methods(args)
        sets = evaluation_sets(args)
        base = load_baseline(args, sets)
    except (ValueError, FileNotFoundError, CliError) as err:   # CliError: a bad --checkpoint
        print(f"benchmarks/pretrained.py: error: {err}", file=sys.stderr)
        return 2
    firsts = {} if args.panel else None
    results, seconds, pairs = evaluate(methods, sets, firsts)
    raw = {
        "benchmark": "pretrained", "model": info, "quick": bool(args.quick), "seed": args.seed,
        "size": list(args.size), "real_scale": args.real_scale,
        "sets": {k: count for k, (count, _) in sets.items()},
        "units": {"epe": "pixels", "1px": "percent of valid pixels with EPE < 1 px",
                  "3px": "percent, EPE < 3 px", "5px": "percent, EPE < 5 px",
                  "epe_noc": "pixels, over valid pixels that stay visible in frame 2",
                  "epe_occ": "pixels, over valid pixels hidden in frame 2 or leaving it",
                  "noc_percent": "percent of valid pixels that stay visible",
                  "epe_s0-10": "pixels, over valid pixels with |gt| < 10 px (s10-40, s40+ alike)",
                  "seconds_per_pair": "mean wall seconds per layered pair, compilation excluded",
                  "flat_fraction": f"share of frame-1 pixels whose {FLAT_WINDOW}x{FLAT_WINDOW} grey-level "
                                   f"std is below {FLAT_LEVEL:g}",
                  "mean_motion": "pixels, mean ground-truth |flow| over valid pixels"},
        "results": results, "seconds_per_pair": seconds, "pairs": pairs,
        "load_average": list(os.getloadavg()),
    }
    if set(REAL_SETS) & set(sets):        # which copy of OpenCV's samples was scored
        raw["opencv_data"] = opencv_data_record(args, sets)
    if base is not None:
        raw["baseline"] = compare_baseline(results, base, args.baseline)
    from deq_flow_jax.io.common import atomic_write_text, dumps_json, strict_json
    text = dumps_json(raw, indent=2)           # strict: non-finite values become null
    report = strict_json(raw)[0]
    if args.out:
        atomic_write_text(os.path.expanduser(args.out), text + "\n")
        print(f"wrote {args.out}")
    else:
        print(text)
    if args.panel:
        from deq_flow_jax.io import write_image
        write_image(os.path.expanduser(args.panel), draw_panel(firsts), comment=PANEL_COMMENT)
        print(f"wrote {args.panel}")
    print(table(report))
    if base is not None:
        print("\n".join(baseline_table(report["baseline"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
