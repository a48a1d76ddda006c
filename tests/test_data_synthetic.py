"""The synthetic flow dataset: exact ground truth (warping check), determinism, TFDS build."""
import numpy as np
import pytest

from deq_flow_jax.data import SceneConfig, ensure_synthetic, generate_scene, make_eval_source, warp_backward

TINY = dict(height=40, width=56, num_train=3, num_val=2)


def _warp_error(frame1, frame2, flow, occlusion):
    keep = occlusion == 0
    warped = warp_backward(frame2, flow)
    err = np.abs(warped - frame1.astype(np.float32)).mean(-1)[keep].mean()
    base = np.abs(frame2.astype(np.float32) - frame1).mean(-1)[keep].mean()
    return err, base


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ground_truth_passes_warping_check(seed):
    scene = generate_scene(seed, SceneConfig(lighting=0.0))
    f = scene["frames"]
    err, base = _warp_error(f[0], f[1], scene["flows"][0], scene["occlusions"][0])
    # Bilinear resampling of the texture is the only error source: a few grey levels,
    # an order of magnitude below the error of the zero-flow hypothesis.
    assert err < 3.5 and err < 0.15 * base, (err, base)
    # A wrong flow (shifted by one pixel) is clearly worse.
    err_wrong, _ = _warp_error(f[0], f[1], scene["flows"][0] + 1.0, scene["occlusions"][0])
    assert err_wrong > 1.5 * err
    mag = np.linalg.norm(scene["flows"][0], axis=-1)
    assert 3.0 < mag.max() < 40.0
    occ = scene["occlusions"][0].mean()
    assert 0.005 < occ < 0.5


def test_video_frames_chain_and_lighting():
    cfg = SceneConfig(height=48, width=64, num_frames=5, lighting=0.0)
    scene = generate_scene(7, cfg)
    assert scene["frames"].shape == (5, 48, 64, 3) and scene["frames"].dtype == np.uint8
    assert scene["flows"].shape == (4, 48, 64, 2) and scene["flows"].dtype == np.float32
    for t in range(4):
        err, base = _warp_error(scene["frames"][t], scene["frames"][t + 1], scene["flows"][t],
                                scene["occlusions"][t])
        assert err < 0.25 * base, (t, err, base)
    lit = generate_scene(7, SceneConfig(height=48, width=64, num_frames=5, lighting=0.1))
    np.testing.assert_array_equal(lit["flows"], scene["flows"])  # lighting changes colours only
    assert not np.array_equal(lit["frames"][1:], scene["frames"][1:])


def test_generation_is_deterministic():
    a, b = generate_scene((3, 1), SceneConfig()), generate_scene((3, 1), SceneConfig())
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c = generate_scene((3, 2), SceneConfig())
    assert not np.array_equal(a["frames"], c["frames"])


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="num_frames"):
        SceneConfig(num_frames=1)
    with pytest.raises(ValueError, match="at least 16x16"):
        SceneConfig(height=8)


def test_tfds_builds_are_identical_for_one_seed(tmp_path):
    src_a = make_eval_source("synthetic", "train", data_dir=tmp_path / "a", **TINY)
    src_b = make_eval_source("synthetic", "training", data_dir=tmp_path / "b", **TINY)
    assert len(src_a) == len(src_b) == 3
    for i in range(3):
        ea, eb = src_a[i], src_b[i]
        for k in ("image1", "image2", "flow", "valid", "occlusion"):
            np.testing.assert_array_equal(ea[k], eb[k])
        assert ea["meta"] == eb["meta"]
    ex = src_a[1]
    assert ex["image1"].shape == (40, 56, 3) and ex["image1"].dtype == np.uint8
    assert ex["flow"].shape == (40, 56, 2) and ex["flow"].dtype == np.float32
    assert ex["valid"].shape == (40, 56) and ex["valid"].dtype == np.float32
    assert ex["meta"]["scene"] == "train_00001" and ex["meta"]["frame"] == 0
    # The records are exactly the generator's scenes.
    scene = generate_scene((0, 0, 1), SceneConfig(height=40, width=56))
    np.testing.assert_array_equal(ex["image1"], scene["frames"][0])
    np.testing.assert_array_equal(ex["flow"], scene["flows"][0])
    # A different seed gives other data; an existing build is reused.
    other = make_eval_source("synthetic", "train", data_dir=tmp_path / "a", seed=5, **TINY)
    assert not np.array_equal(other[0]["image1"], ex["image1"])
    builder = ensure_synthetic(tmp_path / "a", **TINY)
    assert builder.info.splits["validation"].num_examples == 2


def test_video_source_is_in_sequence_order(tmp_path):
    src = make_eval_source("synthetic_video", "validation", data_dir=tmp_path, height=32, width=48,
                           num_train=1, num_val=2, num_frames=4)
    assert len(src) == 6
    metas = [src[i]["meta"] for i in range(len(src))]
    assert [(m["scene"], m["frame"]) for m in metas] == [
        (f"validation_{s:05d}", t) for s in range(2) for t in range(3)]
    assert src.sequences() == [("validation_00000", [0, 1, 2]), ("validation_00001", [3, 4, 5])]
    assert [src.meta(i) for i in range(len(src))] == metas
    # Consecutive records share a frame: image2 of pair t is image1 of pair t+1.
    np.testing.assert_array_equal(src[0]["image2"], src[1]["image1"])
    with pytest.raises(IndexError, match="out of range"):
        src[6]
    with pytest.raises(ValueError, match="no split 'test'"):
        make_eval_source("synthetic_video", "test", data_dir=tmp_path, height=32, width=48,
                         num_train=1, num_val=2, num_frames=4)


@pytest.mark.slow
def test_default_build_is_well_under_a_minute(tmp_path):
    import time
    start = time.perf_counter()
    builder = ensure_synthetic(tmp_path)
    seconds = time.perf_counter() - start
    assert builder.info.splits["train"].num_examples == 1000
    assert seconds < 45, seconds


def test_concurrent_builds_share_one_dataset(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    kw = dict(height=32, width=48, num_train=2, num_val=1)
    with ThreadPoolExecutor(2) as pool:
        builders = list(pool.map(lambda _: ensure_synthetic(tmp_path, **kw), range(2)))
    assert all(b.info.splits["train"].num_examples == 2 for b in builders)
    src = make_eval_source("synthetic", "train", data_dir=tmp_path, **kw)
    assert src[1]["image1"].shape == (32, 48, 3)


def test_build_leaves_no_temporary_folder(tmp_path, tfds_temp_folders):
    """TFDS looks up published metadata for an unprepared dataset in a `mkdtemp("tfds")` folder it
    never removes; the synthetic builder skips that lookup (one leaked folder per build before)."""
    builder = ensure_synthetic(tmp_path, height=32, width=48, num_train=2, num_val=1)
    assert builder.info.splits["train"].num_examples == 2
    assert tfds_temp_folders() == []
