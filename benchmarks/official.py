"""The official PyTorch DEQ-Flow, timed the way the benchmarks time ours (one place for it).

The official code (`locuslab/deq-flow`, directory `code.v.2.0`) is never part of this
repository: the user passes the path of a local copy (`--official PATH` or the
`DEQ_FLOW_OFFICIAL` environment variable) and needs torch installed. Used by
`benchmarks/inference.py`, `benchmarks/train_memory.py` and `benchmarks/gpu.py`.

* `inference_times(...)`: `model.eval()` forward under `torch.no_grad()` with exactly `n`
  solver steps (f_eps 0, so the solver never stops early), one warm-up then `repeats` runs.
* `make_train_step(...)`: one training step of the official `train_once` loop (forward with
  the fixed-point correction loss, backward, gradient clip 1.0, AdamW step), batch norm frozen
  as in our `train_memory_step.make_step` (`bn_train=False`), on a synthetic pair whose second
  frame is the first shifted by (3, 2) px (the same data as ours).

Images are NCHW float32 0..255 here (PyTorch's layout); ours are NHWC.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import types

import numpy as np

# mode of train_memory_step.make_step -> official flags (f_thres = the step budget)
TRAIN_MODES = {
    "onestep": {"n_losses": 1, "ift": False},
    "correction6": {"n_losses": 6, "ift": False},
    "ift": {"n_losses": 1, "ift": True},
}


def _import_official(path: str):
    """DEQFlow from `path` (code.v.2.0 or its `core` folder); torch thread count from OMP_NUM_THREADS."""
    import torch

    core = os.path.join(path, "core") if os.path.isdir(os.path.join(path, "core")) else path
    if not os.path.isfile(os.path.join(core, "deq_flow.py")):
        raise SystemExit(f"--official {path}: no core/deq_flow.py there (expected the official "
                         "code.v.2.0 folder)")
    try:
        import termcolor  # noqa: F401  (the official solver's logging imports it)
    except ImportError:      # not in every CUDA image: a stand-in that prints plain text
        sys.modules["termcolor"] = types.SimpleNamespace(colored=lambda s, *a, **k: s)
    if core not in sys.path:
        sys.path.insert(0, core)
    from deq_flow import DEQFlow  # the official code, from the user's own copy
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return DEQFlow


def official_args(variant: str, steps: int, *, solver: str = "anderson", n_losses: int = 1,
                  ift: bool = False, mixed_precision: bool = False, eps: float = 0.0):
    """The official argparse namespace for `variant` (B, L, H, G, GMA-*) and a step budget.

    `eps` is f_eps and b_eps (0: never stop early, exactly `steps` solver steps).
    """
    return argparse.Namespace(
        tiny=variant == "tiny", large=variant.endswith("L"), huge=variant.endswith("H"),
        gigantic=variant.endswith("G"), old_version=False, gma=variant.startswith("GMA"),
        wnorm=True, dropout=0.0, mixed_precision=mixed_precision, all_grad=False,
        f_solver="naive_solver" if solver == "naive" else solver, b_solver="broyden",
        f_thres=steps, b_thres=steps, f_eps=eps, b_eps=eps, f_stop_mode="abs", b_stop_mode="abs",
        eval_factor=1.0, eval_f_thres=steps, indexing_core=False, ift=ift, safe_ift=False,
        n_losses=n_losses, indexing=[], phantom_grad=[1], tau=1.0, sup_all=False)


def device_of(name: str = "auto"):
    """torch device: `auto` = cuda when available, else cpu."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def synthetic_pair(batch: int, size, device, seed: int = 0):
    """(image1, image2, flow, valid): NCHW 0..255 frames, image2 = image1 shifted by (3, 2) px."""
    import torch

    h, w = size
    rng = np.random.default_rng(seed)
    im1 = torch.from_numpy(rng.uniform(0, 255, (batch, 3, h, w)).astype(np.float32)).to(device)
    im2 = torch.roll(im1, (2, 3), dims=(2, 3))
    flow = torch.empty(batch, 2, h, w, device=device)
    flow[:, 0], flow[:, 1] = 3.0, 2.0
    return im1, im2, flow, torch.ones(batch, h, w, device=device)


def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeats: int, device):
    """Minimum over repeats of (wall seconds, process CPU seconds), device synchronised."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        sync(device)
        t, c = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu


def inference_times(path: str, variant: str, size, steps, *, batch: int = 1, solver: str = "anderson",
                    repeats: int = 3, device: str = "auto", mixed_precision: bool = False) -> dict:
    """{n: (wall s, CPU s)} of one official forward with exactly n solver steps, per n in `steps`."""
    import torch

    DEQFlow = _import_official(path)
    dev = device_of(device)
    im1, im2, _, _ = synthetic_pair(batch, size, dev)
    times = {}
    for n in steps:
        torch.manual_seed(0)
        model = DEQFlow(official_args(variant, n, solver=solver,
                                      mixed_precision=mixed_precision)).to(dev).eval()
        with torch.no_grad():
            model(im1, im2)
            sync(dev)
            times[n] = timed(lambda m=model: m(im1, im2), repeats, dev)
    return times


def make_train_step(path: str, mode: str, steps: int, *, variant: str = "B", size=(368, 496),
                    batch: int = 1, solver: str = "anderson", device: str = "auto", gamma: float = 0.8,
                    seed: int = 0):
    """Returns (step, device): `step()` runs one official training step and returns the loss.

    mode: `onestep` | `correction6` | `ift` (see `TRAIN_MODES`); the official code has no BPTT.
    """
    import torch

    if mode not in TRAIN_MODES:
        raise ValueError(f"official train mode must be one of {sorted(TRAIN_MODES)}, got {mode!r}")
    DEQFlow = _import_official(path)
    dev = device_of(device)
    torch.manual_seed(seed)
    model = DEQFlow(official_args(variant, steps, solver=solver, **TRAIN_MODES[mode])).to(dev)
    model.train()
    model.freeze_bn()                        # ours: bn_train=False
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=1e-4, eps=1e-8)
    im1, im2, flow, valid = synthetic_pair(batch, size, dev, seed)

    def loss_fn(preds, gt, valid):
        """The official `fixed_point_correction` (main.py) without its EPE metrics."""
        mag = torch.sum(gt ** 2, dim=1).sqrt()
        v = ((valid >= 0.5) & (mag < 400))[:, None]
        n = len(preds)
        loss = 0.0
        for i, p in enumerate(preds):
            loss = loss + gamma ** (n - i - 1) * (v * (p - gt).abs()).mean()
        return loss, torch.zeros(gt.shape[0], *gt.shape[2:], device=gt.device)

    def step():
        opt.zero_grad()
        loss, _ = model(im1, im2, flow, valid, loss_fn)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss.detach())

    return step, dev
