"""Bad input gets one clear error: frame sizes, non-RGB arrays, wrong / broken checkpoints."""
import numpy as np
import pytest
from model_golden import load_golden

from deq_flow_jax.convert import CheckpointMismatchError, load_official
from deq_flow_jax.model import ModelConfig, estimate_flow

CFG = ModelConfig.variant("tiny")


def test_frames_of_different_sizes():
    with pytest.raises(ValueError, match=r"same shape.*\(1, 64, 64, 3\).*\(1, 64, 72, 3\)"):
        estimate_flow({}, CFG, np.zeros((64, 64, 3)), np.zeros((64, 72, 3)))


def test_non_rgb_arrays():
    with pytest.raises(ValueError, match=r"image1: expected an RGB batch.*\(1, 64, 64, 4\)"):
        estimate_flow({}, CFG, np.zeros((64, 64, 4)), np.zeros((64, 64, 4)))
    with pytest.raises(ValueError, match=r"image2: expected an RGB batch"):
        estimate_flow({}, CFG, np.zeros((64, 64, 3)), np.zeros((64, 64)))


def test_bad_options():
    im = np.zeros((64, 64, 3))
    with pytest.raises(ValueError, match="unknown solver 'newton'"):
        estimate_flow({}, CFG, im, im, solver="newton")
    with pytest.raises(ValueError, match="pad_mode"):
        estimate_flow({}, CFG, im, im, pad_mode="middlebury")


def test_wrong_checkpoint_for_the_variant():
    _, sd = load_golden("B")
    with pytest.raises(CheckpointMismatchError) as e:
        load_official(sd, ModelConfig.variant("H"))
    msg = str(e.value)
    assert "cnet.conv2" in msg or "update_block" in msg
    assert "(128," in msg and "(256," in msg and "looks like variant 'B'" in msg


def test_missing_extra_and_misshaped_keys():
    _, sd = load_golden("B")
    cfg = ModelConfig.variant("B")
    broken = dict(sd)
    del broken["module.update_block.gru.convq2.weight_v"]
    with pytest.raises(CheckpointMismatchError,
                       match=r"lacks key 'update_block.gru.convq2.weight_v' \(expected shape "
                             r"\(128, 384, 5, 1\)\)"):
        load_official(broken, cfg)
    extra = dict(sd, **{"module.foo.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(CheckpointMismatchError, match=r"unexpected key 'foo.weight' with shape \(3, 3\)"):
        load_official(extra, cfg)
    bad = dict(sd)
    bad["module.mask.2.bias"] = np.zeros((575,), np.float32)
    with pytest.raises(CheckpointMismatchError,
                       match=r"'mask.2.bias' has shape \(575,\) in the checkpoint but 'B' expects \(576,\)"):
        load_official(bad, cfg)
    # A GMA checkpoint is not a plain B one.
    _, gma = load_golden("GMA-B")
    with pytest.raises(CheckpointMismatchError, match="unexpected key 'attn.to_qk.weight'|update_block.gru"):
        load_official(gma, cfg)


def test_missing_file_and_bad_source():
    with pytest.raises(FileNotFoundError, match="no such checkpoint file: /nonexistent.pth"):
        load_official("/nonexistent.pth", CFG)
    with pytest.raises(TypeError, match="source must be a .pth path or a mapping"):
        load_official(42, CFG)


def test_converter_switches_weight_norm_parameterisation():
    from deq_flow_jax.model.weight_norm import fold_weight_norm
    _, sd = load_golden("B")
    wn = load_official(sd, ModelConfig.variant("B"))
    plain = load_official(sd, ModelConfig.variant("B", wnorm=False))   # folds g, v
    folded = fold_weight_norm(wn["params"]["update_block"])
    jax_tree = __import__("jax").tree
    jax_tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 folded, plain["params"]["update_block"])
    # ...and a plain checkpoint loads into a weight-normalised configuration.
    plain_sd = {}
    for k, v in sd.items():
        if k.endswith("weight_g"):
            continue
        if k.endswith("weight_v"):
            g = sd[k[:-1] + "g"]
            v = v * (g.reshape(-1, 1, 1, 1) / np.sqrt((v.reshape(v.shape[0], -1) ** 2).sum(1)).reshape(-1, 1, 1, 1))
            k = k[:-2]
        plain_sd[k] = v
    back = load_official(plain_sd, ModelConfig.variant("B"))
    jax_tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 fold_weight_norm(back["params"]["update_block"]), folded)


def test_v1_key_names_load():
    _, sd = load_golden("B")
    v1 = {k.replace("module.mask.", "module.update_block.mask."): v for k, v in sd.items()}
    a = load_official(sd, ModelConfig.variant("B"))
    b = load_official(v1, ModelConfig.variant("B"))
    np.testing.assert_array_equal(a["params"]["mask"]["mask_2"]["kernel"],
                                  b["params"]["mask"]["mask_2"]["kernel"])
