"""The non-flow example: an implicit (DEQ) spiral classifier learns with the solver core."""
import json

import numpy as np

from experiments.implicit_classifier.data import spirals
from experiments.implicit_classifier.train import main


def test_spirals_are_balanced_and_bounded():
    x, y = spirals(50, n_classes=3, seed=0)
    assert x.shape == (150, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y), [50, 50, 50])
    assert np.abs(x).max() < 1.6


def test_deq_classifier_learns_with_ift(capsys):
    """Through the CLI: Anderson forward, IFT backward, 40 full-batch Adam steps."""
    assert main(["--solver", "anderson", "--adjoint", "ift", "--steps", "40", "--n-per-class", "50",
                 "--log-every", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    logs, res = [json.loads(line) for line in lines[:-1]], json.loads(lines[-1])
    assert res["train_acc"] > 0.9, res
    assert res["test_acc"] > 0.85, res          # chance is 1/3
    assert [r["step"] for r in logs] == [20, 40]
    assert logs[-1]["bwd_nstep"] >= 1           # the IFT backward solve is observable in the logs
    assert logs[-1]["fwd_nstep"] >= 3
