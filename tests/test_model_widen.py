"""Function-preserving widening (model/widen.py, train/widen.py, `deq-flow widen`)."""
import dataclasses
import json
import os

import jax
import numpy as np
import pytest
from training_helpers import tiny_config

from deq_flow_jax.model import ModelConfig, estimate_flow, init_model
from deq_flow_jax.model.widen import check_widening, widen_variables


def _pair(h=64, w=96, shift=3, seed=0):
    rng = np.random.default_rng(seed)
    im1 = rng.uniform(0, 255, (1, h, w, 3)).astype(np.float32)
    return im1, np.roll(im1, shift, axis=2)


@pytest.mark.parametrize("wnorm", [True, False])
def test_widened_model_has_the_same_flow_and_live_new_channels(wnorm):
    src = ModelConfig.variant("tiny", wnorm=wnorm)
    dst = dataclasses.replace(src, hidden_dim=48, flow_head_dim=80)
    v = init_model(src, jax.random.PRNGKey(0))
    w = widen_variables(v, src, dst, jax.random.PRNGKey(1))
    gru = w["params"]["update_block"]["gru"]["convq1"]
    kern = np.asarray(gru["weight_v" if wnorm else "kernel"])
    assert kern.shape[2:] == (48 + src.context_dim + src.cat_dim, 48)
    assert np.all(kern[:, :, 32:48, :32] == 0) and np.any(kern[:, :, 32:48, 32:] != 0)
    im1, im2 = _pair()
    a = estimate_flow(v, src, im1, im2, solver="naive", max_steps=10)
    b = estimate_flow(w, dst, im1, im2, solver="naive", max_steps=10)
    np.testing.assert_allclose(np.asarray(b.flow), np.asarray(a.flow), atol=1e-4)
    hidden = np.asarray(b.cache[0])
    np.testing.assert_allclose(hidden[..., :32], np.asarray(a.cache[0]), atol=1e-5)
    assert np.abs(hidden[..., 32:]).mean() > 1e-3        # the new channels move
    # The zeros are what keep the flow: a non-zero weight from a new channel changes it.
    w2 = jax.tree.map(lambda x: x, w)
    name = "weight_v" if wnorm else "kernel"
    w2["params"]["update_block"]["flow_head"]["conv1"][name] = (
        w["params"]["update_block"]["flow_head"]["conv1"][name].at[:, :, 40, :].set(0.5))
    c = estimate_flow(w2, dst, im1, im2, solver="naive", max_steps=10)
    assert np.abs(np.asarray(c.flow) - np.asarray(a.flow)).max() > 1e-2


def test_only_growing_widths_are_accepted():
    s = ModelConfig.variant("S")
    check_widening(s, dataclasses.replace(s, hidden_dim=128))
    with pytest.raises(ValueError, match="can only grow"):
        check_widening(s, dataclasses.replace(s, hidden_dim=32))
    with pytest.raises(ValueError, match="fnet_dim differs"):
        check_widening(s, dataclasses.replace(s, fnet_dim=256))


@pytest.fixture(scope="module")
def widened(tmp_path_factory):
    from deq_flow_jax.cli import main
    from deq_flow_jax.train import train_and_evaluate
    root = tmp_path_factory.mktemp("widen")
    cfg = tiny_config(root / "data", num_steps=4, log_every=2, eval_every=4,
                      checkpoint_every=4, ema_decay=0.9)
    train_and_evaluate(cfg, str(root / "src"))
    assert main(["widen", str(root / "src"), str(root / "dst"), "--hidden-dim", "48",
                 "--seed", "3"]) == 0
    return cfg, root


def test_widened_workdir_resumes_with_the_same_flow(widened, capsys):
    from deq_flow_jax import checkpoints
    from deq_flow_jax.train import train_and_evaluate
    cfg, root = widened
    src_v, src_cfg, deq = checkpoints.load(str(root / "src"), "latest")
    dst_v, dst_cfg, _ = checkpoints.load(str(root / "dst"), "latest")
    assert (src_cfg.hidden_dim, dst_cfg.hidden_dim) == (32, 48)
    im1, im2 = _pair(48, 64)
    a = estimate_flow(src_v, src_cfg, im1, im2, solver="naive", max_steps=6)
    b = estimate_flow(dst_v, dst_cfg, im1, im2, solver="naive", max_steps=6)
    np.testing.assert_allclose(np.asarray(b.flow), np.asarray(a.flow), atol=1e-4)
    written = json.load(open(root / "dst" / "config.json"))
    assert written["model"]["hidden_dim"] == 48 and written["num_steps"] == 4
    assert sorted(os.listdir(root / "dst" / "checkpoints")) == ["4"]
    assert os.path.isfile(root / "dst" / ".deq-flow-workdir")            # a working folder,
    assert not os.path.exists(root / "dst" / ".deq-flow-output")         # not an output
    # Resuming without the new width is refused before anything is rewritten.
    cfg2 = tiny_config(root / "data", num_steps=6, log_every=2, eval_every=6,
                       checkpoint_every=6, ema_decay=0.9)
    with pytest.raises(ValueError, match="hidden_dim 48 .the config asks for 32"):
        train_and_evaluate(cfg2, str(root / "dst"))
    assert json.load(open(root / "dst" / "model_config.json"))["hidden_dim"] == 48
    cfg2.model.hidden_dim = 48
    m = train_and_evaluate(cfg2, str(root / "dst"))
    assert "resumed from step 4" in capsys.readouterr().out
    assert np.isfinite(m["epe"]) and m["step"] == 6
    lines = [json.loads(x) for x in open(root / "dst" / "train.jsonl")]
    assert [x["step"] for x in lines if x["kind"] == "train"] == [6]


def test_widen_refuses_bad_input_in_one_line(widened, capsys):
    from deq_flow_jax.cli import main
    _, root = widened
    before = sorted(os.listdir(root))
    cases = [
        ([str(root / "src"), str(root / "dst"), "--hidden-dim", "64"], "output path exists"),
        ([str(root / "src"), str(root / "n1"), "--hidden-dim", "16"], "can only grow"),
        ([str(root / "src"), str(root / "n2")], "nothing to widen"),
        ([str(root / "src"), str(root / "src" / "inner"), "--hidden-dim", "64"], "source workdir"),
        ([str(root / "data"), str(root / "n3"), "--hidden-dim", "64"], "not a training workdir"),
    ]
    for args, text in cases:
        assert main(["widen", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err, err
    assert sorted(os.listdir(root)) == before
    assert "inner" not in os.listdir(root / "src")


def test_widened_shipped_model_keeps_its_anderson_fixed_point():
    """With Anderson (which mixes all components of the wider state) the trajectory differs,
    but the fixed point of the old channels does not: the shipped model, a held-out photograph
    shifted by 4 px, 24 steps."""
    from deq_flow_jax import load_pretrained
    from deq_flow_jax.data import photos
    v, src = load_pretrained()[:2]
    dst = dataclasses.replace(src, hidden_dim=128)
    w = widen_variables(v, src, dst, jax.random.PRNGKey(1))
    pair = photos.translation_pair(photos.photo_names("validation")[0], (4, 0), size=(128, 192))
    a = estimate_flow(v, src, pair["image1"], pair["image2"], solver="anderson", max_steps=24)
    b = estimate_flow(w, dst, pair["image1"], pair["image2"], solver="anderson", max_steps=24)
    diff = np.abs(np.asarray(a.flow) - np.asarray(b.flow))
    assert diff.max() < 0.01 and diff.mean() < 1e-3, (diff.max(), diff.mean())
