"""Round trips and validation of the flow file formats (deq_flow_jax.io)."""
import os

import cv2
import numpy as np
import pytest

from deq_flow_jax import io as fio


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_flo_round_trip(tmp_path, rng):
    flow = rng.normal(scale=10, size=(7, 11, 2)).astype(np.float32)
    path = tmp_path / "a.flo"
    fio.write_flo(path, flow)
    assert os.path.getsize(path) == 12 + 7 * 11 * 8
    np.testing.assert_array_equal(fio.read_flo(path), flow)
    np.testing.assert_array_equal(fio.read_flow(str(path)), flow)
    # Independent reference: the header layout written by hand.
    raw = path.read_bytes()
    assert np.frombuffer(raw[:4], "<f4")[0] == np.float32(202021.25)
    assert tuple(np.frombuffer(raw[4:12], "<i4")) == (11, 7)
    assert np.frombuffer(raw[12:20], "<f4").tolist() == flow[0, 0].tolist()


def test_flo_rejects_bad_files(tmp_path, rng):
    flow = rng.normal(size=(4, 5, 2)).astype(np.float32)
    good = fio.encode_flo(flow)
    bad_magic = tmp_path / "magic.flo"
    bad_magic.write_bytes(b"\0\0\0\0" + good[4:])
    with pytest.raises(fio.FlowFormatError, match=r"magic.flo: bad .flo magic"):
        fio.read_flo(bad_magic)
    trunc = tmp_path / "trunc.flo"
    trunc.write_bytes(good[:-5])
    with pytest.raises(fio.FlowFormatError, match=r"trunc.flo: truncated"):
        fio.read_flo(trunc)
    short = tmp_path / "short.flo"
    short.write_bytes(good[:6])
    with pytest.raises(fio.FlowFormatError, match=r"short.flo: truncated .flo header"):
        fio.read_flo(short)
    wrong = tmp_path / "wrong.flo"
    wrong.write_bytes(good + b"\0" * 8)
    with pytest.raises(fio.FlowFormatError, match=r"wrong.flo: wrong .flo size"):
        fio.read_flo(wrong)
    neg = tmp_path / "neg.flo"
    neg.write_bytes(good[:4] + np.array([-3, 4], "<i4").tobytes() + good[12:])
    with pytest.raises(fio.FlowFormatError, match=r"neg.flo: implausible"):
        fio.read_flo(neg)
    with pytest.raises(FileNotFoundError, match="missing.flo"):
        fio.read_flo(tmp_path / "missing.flo")


@pytest.mark.parametrize("little", [True, False])
def test_pfm_round_trip_and_row_order(tmp_path, rng, little):
    data = rng.normal(size=(5, 6, 3)).astype(np.float32)
    path = tmp_path / "a.pfm"
    fio.write_pfm(path, data, little_endian=little)
    np.testing.assert_array_equal(fio.read_pfm(path), data)
    np.testing.assert_array_equal(fio.read_pfm_flow(path), data[..., :2])
    # Independent reference: rows are stored bottom to top.
    raw = path.read_bytes()
    header_len = len(b"PF\n6 5\n") + len(b"-1.0\n" if little else b"1.0\n")
    first = np.frombuffer(raw[header_len:header_len + 12], ("<" if little else ">") + "f4")
    np.testing.assert_array_equal(first, data[-1, 0])
    grey = rng.normal(size=(3, 4)).astype(np.float32)
    fio.write_pfm(tmp_path / "g.pfm", grey)
    np.testing.assert_array_equal(fio.read_pfm(tmp_path / "g.pfm"), grey)
    with pytest.raises(fio.FlowFormatError, match="needs 3 channels"):
        fio.read_pfm_flow(tmp_path / "g.pfm")


def test_pfm_rejects_bad_files(tmp_path, rng):
    fio.write_pfm(tmp_path / "ok.pfm", rng.normal(size=(4, 5, 2)))
    good = (tmp_path / "ok.pfm").read_bytes()
    cases = {
        "magic.pfm": (b"P6" + good[2:], "bad PFM magic"),
        "trunc.pfm": (good[:-7], "truncated PFM data"),
        "wrong.pfm": (good + b"\0\0\0\0", "wrong PFM size"),
        "dims.pfm": (good.replace(b"5 4\n", b"5 x\n"), "malformed PFM size"),
        "head.pfm": (b"PF\n5 4", "truncated PFM header"),
    }
    for name, (data, msg) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(fio.FlowFormatError, match=f"{name}: {msg}"):
            fio.read_pfm(tmp_path / name)


def test_kitti_round_trip_and_channel_layout(tmp_path, rng):
    flow = np.round(rng.uniform(-100, 100, size=(6, 9, 2)) * 64) / 64
    valid = (rng.uniform(size=(6, 9)) > 0.3).astype(np.float32)
    path = tmp_path / "k.png"
    fio.write_kitti_flow(path, flow, valid)
    got_flow, got_valid = fio.read_kitti_flow(path)
    assert got_flow.dtype == np.float32 and got_valid.dtype == np.float32
    np.testing.assert_array_equal(got_flow, flow.astype(np.float32))
    np.testing.assert_array_equal(got_valid, valid)
    # Independent reference: the raw 16-bit channels (OpenCV stores BGR).
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw[..., 2], (flow[..., 0] * 64 + 2 ** 15).astype(np.uint16))
    np.testing.assert_array_equal(raw[..., 0], valid.astype(np.uint16))


def test_kitti_rejects_bad_files(tmp_path):
    cv2.imwrite(str(tmp_path / "eight.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(fio.FlowFormatError, match="eight.png: KITTI flow PNG must be 16-bit"):
        fio.read_kitti_flow(tmp_path / "eight.png")
    cv2.imwrite(str(tmp_path / "grey.png"), np.zeros((4, 4), np.uint16))
    with pytest.raises(fio.FlowFormatError, match="grey.png: KITTI flow PNG must have 3 channels"):
        fio.read_kitti_flow(tmp_path / "grey.png")
    good = fio.encode_kitti_flow(np.zeros((8, 8, 2)))
    (tmp_path / "magic.png").write_bytes(b"GIF89a" + good[6:])
    with pytest.raises(fio.FlowFormatError, match="magic.png: bad PNG signature"):
        fio.read_kitti_flow(tmp_path / "magic.png")
    (tmp_path / "trunc.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(fio.FlowFormatError, match="trunc.png: corrupt or truncated"):
        fio.read_kitti_flow(tmp_path / "trunc.png")


def test_image_reads_rgb_grey_rgba_and_ppm(tmp_path, rng):
    img = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    fio.write_image(tmp_path / "a.png", img)
    np.testing.assert_array_equal(fio.read_image(tmp_path / "a.png"), img)
    fio.write_image(tmp_path / "a.ppm", img)
    np.testing.assert_array_equal(fio.read_image(tmp_path / "a.ppm"), img)
    np.testing.assert_array_equal(fio.decode_image(fio.encode_png(img)), img)
    # Grey and RGBA written with OpenCV directly (BGR(A) order).
    grey = img[..., 0]
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    np.testing.assert_array_equal(fio.read_image(tmp_path / "g.png"), np.stack([grey] * 3, -1))
    rgba = np.concatenate([img, np.full((5, 7, 1), 9, np.uint8)], -1)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba[..., [2, 1, 0, 3]])
    np.testing.assert_array_equal(fio.read_image(tmp_path / "rgba.png"), img)
    (tmp_path / "bad.png").write_bytes(fio.encode_png(img)[:40])
    with pytest.raises(fio.FlowFormatError, match="bad.png: not a readable image"):
        fio.read_image(tmp_path / "bad.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(fio.FlowFormatError, match="empty.png: empty image"):
        fio.read_image(tmp_path / "empty.png")


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_image_comment_round_trip(tmp_path, rng, ext):
    img = (rng.random((24, 40, 3)) * 255).astype(np.uint8)
    path = str(tmp_path / f"a.{ext}")
    fio.write_image(path, img, comment="written by the test")
    assert fio.image_comment(path) == "written by the test"
    # The file stays an ordinary image for OpenCV (and for PIL, which sees the comment too).
    plain = str(tmp_path / f"b.{ext}")
    fio.write_image(plain, img)
    assert fio.image_comment(plain) is None
    np.testing.assert_array_equal(fio.read_image(path), fio.read_image(plain))
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(path) as im:
        im.load()
        found = im.info.get("Comment", im.info.get("comment"))
    assert found in ("written by the test", b"written by the test")


def test_image_comment_of_other_files(tmp_path):
    assert fio.image_comment(str(tmp_path / "missing.png")) is None
    (tmp_path / "t.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 7)   # truncated
    assert fio.image_comment(str(tmp_path / "t.png")) is None
    (tmp_path / "n.txt").write_text("Comment")
    assert fio.image_comment(str(tmp_path / "n.txt")) is None
    with pytest.raises(ValueError, match="ppm"):
        fio.write_image(str(tmp_path / "c.ppm"), np.zeros((4, 4, 3), np.uint8), comment="x")
    assert not (tmp_path / "c.ppm").exists()


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "x.flo"
    fio.write_flo(path, np.zeros((2, 2, 2), np.float32))
    before = path.read_bytes()
    with pytest.raises(ValueError):
        fio.write_flo(path, np.zeros((2, 2, 3)))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.flo"]
