"""OpenCV's sample pairs with known motion (`data.opencv_samples`) and the benchmark's opt-in
aloe / graffiti sets, on a fake samples folder written here (the real one is the user's copy:
tests/test_pretrained.py scores the shipped model on it where it is installed)."""
import json
import os

import cv2
import numpy as np
import pytest
from training_helpers import benchmark_module

from deq_flow_jax.data import opencv_samples as ocv
from deq_flow_jax.warp import warp_backward

H_TRUE = np.array([[0.95, -0.06, 6.0], [0.04, 1.02, -3.0], [2e-4, -1e-4, 1.0]])


def _texture(rng, h, w):
    """A smooth random colour texture (so that bilinear warps of it stay close)."""
    noise = rng.uniform(0, 255, (h // 4 + 2, w // 4 + 2, 3)).astype(np.float32)
    return np.clip(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def _write_xml(path, hmat):
    rows = "\n".join("  ".join(f"{v:.10e}" for v in row) for row in hmat)
    path.write_text('<?xml version="1.0"?>\n<opencv_storage>\n<H13 type_id="opencv-matrix">\n'
                    f"  <rows>3</rows>\n  <cols>3</cols>\n  <dt>d</dt>\n  <data>\n{rows} </data></H13>\n"
                    "</opencv_storage>\n")


@pytest.fixture
def samples(tmp_path):
    """A fake samples/data folder: a 60x90 'Aloe' whose right image is the left shifted by its
    disparity (unknown in one corner), and a 64x80 'Graffiti' whose frame 3 is frame 1 under
    H_TRUE."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    folder.mkdir()
    left = _texture(rng, 60, 90)
    disp = np.full((60, 90), 6, np.uint8)
    disp[:, 45:] = 9
    disp[:6, :9] = 0                                   # unknown
    xs = np.arange(90)[None, :] - disp.astype(np.float32)          # left x shows at x - d
    right = np.zeros_like(left)
    for y in range(60):        # right(x') = left(x) with x' = x - d(x): resample along each row
        right[y] = np.stack([np.interp(np.arange(90), xs[y], left[y, :, c]) for c in range(3)], -1)
    cv2.imwrite(str(folder / "aloeL.jpg"), left[..., ::-1])
    cv2.imwrite(str(folder / "aloeR.jpg"), right[..., ::-1])
    cv2.imwrite(str(folder / "aloeGT.png"), disp)
    g1 = _texture(rng, 64, 80)
    g3 = cv2.warpPerspective(g1, H_TRUE, (80, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    cv2.imwrite(str(folder / "graf1.png"), g1[..., ::-1])
    cv2.imwrite(str(folder / "graf3.png"), g3[..., ::-1])
    _write_xml(folder / "H1to3p.xml", H_TRUE)
    return str(folder), disp


def test_find_samples_dir(samples, tmp_path, monkeypatch):
    folder, _ = samples
    assert ocv.find_samples_dir(folder) == folder
    monkeypatch.setenv(ocv.ENV_VAR, folder)
    assert ocv.find_samples_dir() == folder
    with pytest.raises(ValueError, match="no such folder.*opencv-doc"):
        ocv.find_samples_dir(str(tmp_path / "missing"))
    os.remove(os.path.join(folder, "graf3.png"))
    with pytest.raises(ValueError, match="no graf3.png there"):
        ocv.find_samples_dir(folder)
    assert ocv.find_samples_dir(folder, ocv.ALOE_FILES) == folder      # only what is asked for
    unpacked = tmp_path / "deb"                  # where `dpkg -x opencv-doc_*.deb DIR` puts them
    inner = unpacked / ocv.DEBIAN_DIR.lstrip("/")
    os.makedirs(inner)
    for name in ocv.ALOE_FILES:
        os.link(os.path.join(folder, name), inner / name)
    assert ocv.find_samples_dir(str(unpacked), ocv.ALOE_FILES) == str(inner)


def test_aloe_pair_is_minus_the_disparity(samples):
    folder, disp = samples
    ex = ocv.aloe_pair(folder, 1.0)
    known = disp > 0
    assert ex["image1"].shape == (60, 90, 3) and ex["image1"].dtype == np.uint8
    np.testing.assert_array_equal(ex["valid"], known.astype(np.float32))
    np.testing.assert_array_equal(ex["flow"][..., 0][known], -disp[known].astype(np.float32))
    assert np.all(ex["flow"][..., 1] == 0) and np.all(ex["flow"][~known] == 0)
    assert ex["out_of_frame"][6:, :6].all() and not ex["out_of_frame"][:, 20:].any()   # unknown: 0
    # the flow maps the left image onto the right one (JPEG aside) far better than zero flow
    keep = known & (ex["occlusion"] == 0)
    err = np.abs(warp_backward(ex["image2"], ex["flow"]) - ex["image1"]).mean(-1)[keep].mean()
    zero = np.abs(ex["image2"].astype(np.float32) - ex["image1"]).mean(-1)[keep].mean()
    assert err < 0.3 * zero, (err, zero)


def test_aloe_pair_downscaled(samples):
    folder, disp = samples
    ex = ocv.aloe_pair(folder, 1 / 3)
    assert ex["image1"].shape == (20, 30, 3) and ex["meta"]["id"] == "aloe_30x20"
    # a 3x3 block is valid only if all of it is known; its flow is its mean disparity / 3
    blocks = disp.reshape(20, 3, 30, 3).astype(np.float32)
    known = (blocks > 0).all(axis=(1, 3))
    np.testing.assert_array_equal(ex["valid"] > 0, known)
    np.testing.assert_allclose(ex["flow"][..., 0][known], -blocks.mean(axis=(1, 3))[known] / 3, atol=1e-5)
    assert not known[:2, :3].any() and known[2:, 3:].all()
    with pytest.raises(ValueError, match="scale must be in"):
        ocv.aloe_pair(folder, 2.0)


def test_graffiti_pair_is_the_homography(samples):
    folder, _ = samples
    ex = ocv.graffiti_pair(folder, 1.0)
    pts = np.array([[[0.0, 0.0]], [[40.0, 31.0]], [[79.0, 63.0]]], np.float64)
    mapped = cv2.perspectiveTransform(pts, H_TRUE)[:, 0]
    got = np.array([p[0] + ex["flow"][int(p[0][1]), int(p[0][0])] for p in pts])
    np.testing.assert_allclose(got, mapped, atol=1e-3)
    assert ex["valid"].all() and 0 < ex["out_of_frame"].mean() < 0.5
    np.testing.assert_array_equal(ex["occlusion"], ex["out_of_frame"])
    inside = ex["out_of_frame"] == 0
    def mismatch(flow):
        return np.abs(warp_backward(ex["image2"], flow) - ex["image1"]).mean(-1)[inside].mean()

    err, zero = mismatch(ex["flow"]), mismatch(np.zeros_like(ex["flow"]))
    assert err < 0.25 * zero and err < mismatch(ex["flow"] + np.float32([0.5, 0.0])), (err, zero)


def test_graffiti_pair_downscaled_keeps_pixel_centres(samples):
    folder, _ = samples
    ex = ocv.graffiti_pair(folder, 0.5)
    assert ex["image1"].shape == (32, 40, 3)
    # half-size pixel (x, y) is full-size ((x + 0.5) * 2 - 0.5, ...), and back
    x, y = 13.0, 21.0
    full = np.array([[[2 * x + 0.5, 2 * y + 0.5]]])
    q = cv2.perspectiveTransform(full, H_TRUE)[0, 0]
    np.testing.assert_allclose(np.array([x, y]) + ex["flow"][int(y), int(x)], (q + 0.5) / 2 - 0.5, atol=1e-3)


def test_read_homography_rejects_bad_files(tmp_path):
    bad = tmp_path / "H.xml"
    bad.write_text("<opencv_storage><H13><data>1 2 3</data></H13></opencv_storage>")
    with pytest.raises(ValueError, match="one 3x3 matrix"):
        ocv.read_homography(str(bad))
    _write_xml(bad, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="not finite and invertible"):
        ocv.read_homography(str(bad))


def test_pretrained_benchmark_real_sets(samples, tmp_path, capsys):
    folder, _ = samples
    bench = benchmark_module("pretrained")
    out = tmp_path / "real.json"
    assert bench.main(["--sets", "aloe", "graffiti", "--opencv-data", folder, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["sets"] == {"aloe": 2, "graffiti": 2}
    assert report["opencv_data"]["folder"] == os.path.abspath(folder)
    assert sorted(report["opencv_data"]["sha256"]) == sorted(ocv.ALOE_FILES + ocv.GRAFFITI_FILES)
    for name, pair, scales in (("aloe", ocv.aloe_pair, ocv.ALOE_SCALES),
                               ("graffiti", ocv.graffiti_pair, ocv.GRAFFITI_SCALES)):
        rows = report["results"][name]
        # zero flow's EPE: the mean |gt| over the valid pixels of both pairs, pooled
        mags = [np.linalg.norm(e["flow"], axis=-1)[e["valid"] > 0] for e in (pair(folder, s) for s in scales)]
        assert rows["zero"]["epe"] == pytest.approx(np.concatenate(mags).mean(), rel=1e-4)
        assert rows["zero"]["valid_pixels"] == sum(m.size for m in mags)
        assert np.isfinite(rows["dis_medium"]["epe"])
    # the folder is an input: --out inside it is refused, as a folder without the files is
    code = bench.main(["--sets", "aloe", "--opencv-data", folder, "--out", os.path.join(folder, "x.json")])
    assert code == 2 and "--opencv-data" in capsys.readouterr().err
    assert bench.main(["--sets", "graffiti", "--opencv-data", str(tmp_path), "--out", str(tmp_path / "y.json")]) == 2
    err = capsys.readouterr().err
    assert "no graf1.png there" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y.json").exists() and not os.path.exists(os.path.join(folder, "x.json"))
