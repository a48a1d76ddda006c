"""Shared pieces of the CLI safety tests: tree hashing, one-line error checks, a fake model.

The fake estimator stands in for the model where a test is about paths, flags and
files, not flow: it returns the mean colour difference of the two frames as a constant
flow (NaN for frames listed in `nan_frames`) and counts its calls.
"""
import hashlib
import os

import numpy as np

from deq_flow_jax import cli, io
from deq_flow_jax.evaluate.estimator import Estimate, SolverSettings


def tree_state(root) -> dict:
    """{relative path: sha256 (files) | "dir" | "link -> target"} of everything under root."""
    state = {}
    for d, subs, files in os.walk(root):
        for s in subs:
            p = os.path.join(d, s)
            state[os.path.relpath(p, root)] = ("link -> " + os.readlink(p)) if os.path.islink(p) else "dir"
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p):
                state[os.path.relpath(p, root)] = "link -> " + os.readlink(p)
            else:
                with open(p, "rb") as fh:
                    state[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return state


def run(capsys, *argv):
    """Runs `deq-flow argv...` in-process -> (exit code, stdout, stderr)."""
    rc = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_one_line_error(rc, err, command, *words, code=2):
    """Exit `code`, exactly one stderr line `deq-flow COMMAND: ...` holding every word."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, (rc, err)
    assert len(lines) == 1, err
    assert lines[0].startswith(f"deq-flow {command}: "), lines[0]
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


def write_frames(folder, n=3, size=(16, 24), names=None, seed=0):
    """n random RGB frames as PNGs in `folder` (created); returns their paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        name = names[i] if names else f"f{i:02d}.png"
        paths.append(os.path.join(folder, name))
        io.write_image(paths[-1], rng.integers(0, 255, size + (3,), dtype=np.uint8))
    return paths


class FakeEstimator:
    """Model stand-in: flow = constant mean difference of the frames; NaN for chosen pairs."""

    calls = 0
    nan_pairs: set = set()

    def __init__(self, variables=None, cfg=None, settings=None, pad_mode="sintel", max_size=None):
        self.settings, self.max_size = settings or SolverSettings(), max_size

    def __call__(self, image1, image2, *, flow_init=None, cache=None):
        im1 = np.asarray(image1, np.float32)
        im2 = np.asarray(image2, np.float32)
        if im1.ndim == 3:
            im1, im2 = im1[None], im2[None]
        b, h, w, _ = im1.shape
        index = FakeEstimator.calls
        FakeEstimator.calls += 1
        value = float(np.mean(im2 - im1)) / 255.0
        flow = np.full((b, h, w, 2), np.nan if index in FakeEstimator.nan_pairs else value, np.float32)
        low = np.zeros((b, (h + 7) // 8, (w + 7) // 8, 2), np.float32)
        ones = np.ones((b,), np.int32)
        return Estimate(flow, low, np.zeros(low.shape[:3] + (4,), np.float32), ones,
                        np.zeros((b,), np.float32), np.zeros((b,), np.float32), 0.0, ones,
                        np.ones((b,), bool))


def use_fake_model(monkeypatch, nan_pairs=()):
    """Makes infer / eval / export use FakeEstimator and skip loading any checkpoint."""
    from deq_flow_jax.cli import model_args
    from deq_flow_jax.evaluate import estimator

    FakeEstimator.calls = 0
    FakeEstimator.nan_pairs = set(nan_pairs)
    monkeypatch.setattr(model_args, "load_checkpoint_arg", lambda path, which="best": (None, None, {}))
    monkeypatch.setattr(estimator, "FlowEstimator", FakeEstimator)
    return FakeEstimator
