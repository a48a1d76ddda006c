"""Each benchmark builder prepares from a tiny fake manual dir in the real layout."""
import os

import numpy as np
import pytest

import data_prep
from data_prep.common import ManualDirError
from deq_flow_jax import io as fio
from deq_flow_jax.data import make_eval_source, make_train_loader

H, W = 12, 16


def _img(tag: int) -> np.ndarray:
    """An image whose pixel (0, 0) encodes `tag`."""
    img = np.random.default_rng(tag).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    img[0, 0] = (tag % 256, tag // 256, 7)
    return img


def _tag(img) -> int:
    return int(img[0, 0, 0]) + 256 * int(img[0, 0, 1])


def _flow(tag: float) -> np.ndarray:
    return np.full((H, W, 2), (tag, -tag), np.float32)


def test_chairs_split_picks_the_right_pairs(tmp_path):
    root = tmp_path / "manual" / "FlyingChairs_release"
    labels = [1, 2, 1, 1, 2]
    for i in range(len(labels)):
        fio.write_image(root / "data" / f"{i + 1:05d}_img1.ppm", _img(2 * i))
        fio.write_image(root / "data" / f"{i + 1:05d}_img2.ppm", _img(2 * i + 1))
        fio.write_flo(root / "data" / f"{i + 1:05d}_flow.flo", _flow(i))
    (root / "FlyingChairs_train_val.txt").write_text("\n".join(map(str, labels)) + "\n")
    data_prep.prepare("chairs", tmp_path / "manual", tmp_path / "tfds")
    train = make_eval_source("chairs", "train", data_dir=tmp_path / "tfds")
    val = make_eval_source("chairs", "validation", data_dir=tmp_path / "tfds")
    assert (len(train), len(val)) == (3, 2)
    for src, expected in ((train, [0, 2, 3]), (val, [1, 4])):
        for j, i in enumerate(expected):
            ex = src[j]
            assert _tag(ex["image1"]) == 2 * i and _tag(ex["image2"]) == 2 * i + 1
            np.testing.assert_array_equal(ex["flow"], _flow(i))
            assert ex["valid"].dtype == np.float32 and ex["valid"].all()
            assert ex["meta"]["id"] == f"{i + 1:05d}"
    # A split file that does not match the pairs is reported.
    (root / "FlyingChairs_train_val.txt").write_text("1\n2\n")
    with pytest.raises(ManualDirError, match="2 labels for 5 pairs"):
        data_prep.prepare("chairs", tmp_path / "manual", tmp_path / "tfds2")


def test_things_directions_and_passes(tmp_path):
    root = tmp_path / "FlyingThings3D"
    n = 3
    for dstype, offset in (("frames_cleanpass", 0), ("frames_finalpass", 100)):
        for split in ("TRAIN", "TEST"):
            for i in range(n):
                fio.write_image(root / dstype / split / "A" / "0000" / "left" / f"{6 + i:04d}.png",
                                _img(offset + i + (50 if split == "TEST" else 0)))
    for split in ("TRAIN", "TEST"):
        for d, name in (("into_future", "Future"), ("into_past", "Past")):
            for i in range(n):
                sign = 1 if d == "into_future" else -1
                fio.write_pfm(root / "optical_flow" / split / "A" / "0000" / d / "left" /
                              f"OpticalFlowInto{name}_{6 + i:04d}_L.pfm", _flow(sign * (i + 1)))
    data_prep.prepare("things", tmp_path, tmp_path / "tfds")
    clean = make_eval_source("things", "train", data_dir=tmp_path / "tfds", dstype="clean")
    final = make_eval_source("things_final", "train", data_dir=tmp_path / "tfds")
    test = make_eval_source("things_clean", "test", data_dir=tmp_path / "tfds")
    assert len(clean) == len(final) == len(test) == 2 * (n - 1)
    got = [(_tag(clean[k]["image1"]), _tag(clean[k]["image2"]), clean[k]["flow"][0, 0, 0]) for k in range(4)]
    # into_future: (i, i+1, flow_i); into_past: (i+1, i, flow_{i+1}).
    assert got == [(0, 1, 1.0), (1, 2, 2.0), (1, 0, -2.0), (2, 1, -3.0)]
    assert _tag(final[0]["image1"]) == 100 and _tag(test[0]["image1"]) == 50
    assert clean[2]["meta"]["scene"] == "TRAIN/A/0000/into_past"


def test_sintel_scenes_frames_and_test_split(tmp_path):
    root = tmp_path / "Sintel"
    scenes = {"alley_1": 3, "bamboo_2": 4}
    for split in ("training", "test"):
        for dstype in ("clean", "final"):
            for s, (scene, n) in enumerate(scenes.items()):
                for i in range(n):
                    fio.write_image(root / split / dstype / scene / f"frame_{i + 1:04d}.png",
                                    _img(10 * s + i))
        if split == "training":
            for s, (scene, n) in enumerate(scenes.items()):
                for i in range(n - 1):
                    fio.write_flo(root / split / "flow" / scene / f"frame_{i + 1:04d}.flo", _flow(10 * s + i))
    data_prep.prepare("sintel", tmp_path, tmp_path / "tfds")
    train = make_eval_source("sintel", "training", data_dir=tmp_path / "tfds", dstype="final")
    test = make_eval_source("sintel_clean", "test", data_dir=tmp_path / "tfds")
    assert len(train) == len(test) == 5
    metas = [train[i]["meta"] for i in range(5)]
    assert [(m["scene"], m["frame"]) for m in metas] == [
        ("alley_1", 0), ("alley_1", 1), ("bamboo_2", 0), ("bamboo_2", 1), ("bamboo_2", 2)]
    assert metas[3]["id"] == "bamboo_2/frame_0002.png"
    np.testing.assert_array_equal(train[3]["flow"], _flow(11))
    assert _tag(train[3]["image1"]) == 11 and _tag(train[3]["image2"]) == 12
    assert "flow" not in test[0] and "valid" not in test[0]
    assert test.sequences() == [("alley_1", [0, 1]), ("bamboo_2", [2, 3, 4])]
    # Missing flow for a scene is reported with the folder.
    os.remove(root / "training" / "flow" / "alley_1" / "frame_0002.flo")
    with pytest.raises(ManualDirError, match="alley_1 has 1 .flo files for 3 frames"):
        data_prep.prepare("sintel", tmp_path, tmp_path / "tfds2")


def _kitti_flow(i):
    flow = np.round(_flow(i + 0.5) * 64) / 64
    valid = np.zeros((H, W), np.float32)
    valid[::2, ::3] = 1
    return flow, valid


def test_kitti_sparse_train_and_test(tmp_path):
    root = tmp_path / "KITTI"
    for split in ("training", "testing"):
        for i in range(3):
            fio.write_image(root / split / "image_2" / f"{i:06d}_10.png", _img(2 * i))
            fio.write_image(root / split / "image_2" / f"{i:06d}_11.png", _img(2 * i + 1))
            if split == "training":
                fio.write_kitti_flow(root / split / "flow_occ" / f"{i:06d}_10.png", *_kitti_flow(i))
    data_prep.prepare("kitti", tmp_path, tmp_path / "tfds")
    train = make_eval_source("kitti", "train", data_dir=tmp_path / "tfds")
    test = make_eval_source("kitti", "testing", data_dir=tmp_path / "tfds")
    assert train.sparse and len(train) == len(test) == 3
    ex = train[1]
    flow, valid = _kitti_flow(1)
    np.testing.assert_array_equal(ex["valid"], valid)
    np.testing.assert_array_equal(ex["flow"][valid > 0], flow[valid > 0])
    assert ex["meta"]["id"] == "000001_10.png" and _tag(ex["image2"]) == 3
    assert "flow" not in test[2] and test[2]["meta"]["id"] == "000002_10.png"
    # The sparse training path: valid points keep their (scaled) flow, the rest is zero.
    loader = make_train_loader("kitti", data_dir=tmp_path / "tfds", crop_size=(8, 8),
                               global_batch_size=3, seed=0)
    batch = next(iter(loader))
    assert batch["flow"].shape == (3, 8, 8, 2) and 0 < batch["valid"].mean() < 1
    assert np.all(batch["flow"][batch["valid"] == 0] == 0)
    assert np.all(np.abs(batch["flow"][batch["valid"] == 1]) > 0)


def test_hd1k_sequences(tmp_path, tfds_temp_folders):
    root = tmp_path / "HD1k"
    for seq, n in ((0, 3), (1, 2)):
        for i in range(n):
            fio.write_image(root / "hd1k_input" / "image_2" / f"{seq:06d}_{i:04d}.png", _img(10 * seq + i))
            fio.write_kitti_flow(root / "hd1k_flow_gt" / "flow_occ" / f"{seq:06d}_{i:04d}.png",
                                 *_kitti_flow(10 * seq + i))
    data_prep.prepare("hd1k", tmp_path, tmp_path / "tfds")
    src = make_eval_source("hd1k", "train", data_dir=tmp_path / "tfds")
    assert len(src) == 3
    assert [(_tag(src[k]["image1"]), _tag(src[k]["image2"])) for k in range(3)] == [(0, 1), (1, 2), (10, 11)]
    assert src[2]["meta"]["scene"] == "000001"
    # TFDS's metadata lookup for an unprepared dataset left an empty mkdtemp("tfds") folder behind
    assert tfds_temp_folders() == []


def _middlebury(root, scenes, *, gray=False, test=()):
    """A Middlebury copy as the archives unpack (each in its own outer folder); the ground
    truth of each scene is unknown (1e10, as Middlebury stores it) in its top-left 3x4 block."""
    images = root / ("other-gray-twoframes" if gray else "other-color-twoframes") / \
        ("other-data-gray" if gray else "other-data")
    for s, scene in enumerate(scenes):
        for i in (10, 11):
            img, path = _img(10 * s + i), images / scene / f"frame{i}.png"
            if gray:                                   # a one-channel PNG, as the grey archives
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(fio.encode_png(img[..., 0]))
            else:
                fio.write_image(path, img)
        flow = _flow(s + 0.25)
        flow[:3, :4] = 1e10
        fio.write_flo(root / "other-gt-flow" / scene / "flow10.flo", flow)
    for s, scene in enumerate(test):
        for i in (10, 11):
            fio.write_image(root / "eval-color-twoframes" / "eval-data" / scene / f"frame{i}.png",
                            _img(100 + 10 * s + i))


def test_middlebury_known_pixels_and_test_split(tmp_path, tfds_temp_folders):
    _middlebury(tmp_path / "middlebury", ("RubberWhale", "Venus"), test=("Army",))
    data_prep.prepare("middlebury", tmp_path, tmp_path / "tfds")
    train = make_eval_source("middlebury", "training", data_dir=tmp_path / "tfds")
    test = make_eval_source("middlebury", "test", data_dir=tmp_path / "tfds")
    assert len(train) == 2 and len(test) == 1 and not train.sparse
    ex = train[1]
    assert ex["meta"]["scene"] == "Venus" and ex["meta"]["id"] == "Venus/frame10.png"
    assert (_tag(ex["image1"]), _tag(ex["image2"])) == (20, 21)
    known = np.ones((H, W), bool)
    known[:3, :4] = False
    np.testing.assert_array_equal(ex["valid"], known)                 # the unknown block is not valid
    np.testing.assert_array_equal(ex["flow"][known], _flow(1.25)[known])
    assert np.all(ex["flow"][~known] == 0)                           # and its 1e10 is not stored
    assert "flow" not in test[0] and _tag(test[0]["image1"]) == 110
    assert tfds_temp_folders() == []


def test_middlebury_grey_frames_and_missing_files(tmp_path):
    _middlebury(tmp_path, ("Dimetrodon",), gray=True)
    data_prep.prepare("middlebury", tmp_path, tmp_path / "tfds")
    ex = make_eval_source("middlebury", "train", data_dir=tmp_path / "tfds")[0]
    grey = _img(10)[..., 0]
    np.testing.assert_array_equal(ex["image1"], np.repeat(grey[..., None], 3, axis=-1))
    os.remove(tmp_path / "other-gray-twoframes" / "other-data-gray" / "Dimetrodon" / "frame11.png")
    with pytest.raises(ManualDirError, match=r"expected .*Dimetrodon/frame11\.png"):
        data_prep.prepare("middlebury", tmp_path, tmp_path / "tfds2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManualDirError, match="other-gt-flow"):
        data_prep.prepare("middlebury", tmp_path / "empty", tmp_path / "tfds3")


def test_missing_manual_dir_and_unprepared_dataset(tmp_path):
    with pytest.raises(ManualDirError, match="does not exist"):
        data_prep.prepare("kitti", tmp_path / "nope", tmp_path / "tfds")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManualDirError, match=r"expected 'training/clean' inside the manual dir"):
        data_prep.prepare("sintel", tmp_path / "empty", tmp_path / "tfds")
    with pytest.raises(FileNotFoundError, match="deq-flow prepare hd1k"):
        make_eval_source("hd1k", "train", data_dir=tmp_path / "tfds")
