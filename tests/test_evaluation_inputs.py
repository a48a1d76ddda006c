"""Bad inputs give one clear error and no partial output; video writing; pair batching.

No model is needed: the CLI validates inputs and the output path before loading
the checkpoint (a missing checkpoint would be the next error).
"""
import os

import numpy as np
import pytest

from deq_flow_jax import cli, io
from deq_flow_jax.evaluate.estimator import Estimate
from deq_flow_jax.evaluate.inputs import InputError, open_frames
from deq_flow_jax.evaluate.sequence import run_sequence
from deq_flow_jax.evaluate.video import VideoWriter


def _frame(h=16, w=24, value=0):
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = value
    img[: h // 2, : w // 2, 1] = 200
    return img


def _write_frames(folder, sizes):
    folder.mkdir(exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        io.write_image(str(folder / f"frame_{i:03d}.png"), _frame(h, w, 10 * i))
    return folder


def _infer(tmp_path, *inputs, extra=()):
    out = tmp_path / "out"
    rc = cli.main(["infer", *map(str, inputs), "--checkpoint", str(tmp_path / "no_model"),
                   "--out", str(out), "--no-progress", *extra])
    return rc, out


def _assert_one_clear_error(capsys, rc, out, *words):
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("deq-flow infer: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not os.path.exists(out)
    assert not [p for p in os.listdir(os.path.dirname(out)) if p.startswith(".tmp")]


def test_folder_with_one_frame(tmp_path, capsys):
    folder = _write_frames(tmp_path / "one", [(16, 24)])
    rc, out = _infer(tmp_path, folder)
    _assert_one_clear_error(capsys, rc, out, str(folder), "at least 2 frames", "found 1")


def test_frames_of_different_sizes(tmp_path, capsys):
    folder = _write_frames(tmp_path / "mixed", [(16, 24), (16, 24), (20, 24)])
    rc, out = _infer(tmp_path, folder)
    _assert_one_clear_error(capsys, rc, out, "frame_002.png", "(20, 24)", "same size")


def test_unreadable_image(tmp_path, capsys):
    folder = _write_frames(tmp_path / "bad", [(16, 24), (16, 24)])
    (folder / "frame_001.png").write_bytes(b"\x89PNG not really")
    rc, out = _infer(tmp_path, folder)
    _assert_one_clear_error(capsys, rc, out, "frame_001.png", "cannot read")


def test_video_that_cannot_be_decoded(tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"garbage" * 100)
    rc, out = _infer(tmp_path, video)
    _assert_one_clear_error(capsys, rc, out, "clip.mp4", "cannot open")


def test_existing_output_needs_overwrite(tmp_path, capsys):
    folder = _write_frames(tmp_path / "ok", [(16, 24), (16, 24)])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    rc = cli.main(["infer", str(folder), "--checkpoint", str(tmp_path / "no_model"),
                   "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "output path exists" in err and "--overwrite" in err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    # --overwrite replaces only a folder deq-flow wrote: this one is refused as well
    rc = cli.main(["infer", str(folder), "--checkpoint", str(tmp_path / "no_model"),
                   "--out", str(tmp_path / "out"), "--no-progress", "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2 and "not written by deq-flow" in err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    # a folder with deq-flow's marker passes the output check; the next problem is the model
    (tmp_path / "out" / ".deq-flow-output").write_text("{}")
    rc = cli.main(["infer", str(folder), "--checkpoint", str(tmp_path / "no_model"),
                   "--out", str(tmp_path / "out"), "--no-progress", "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2 and "--checkpoint" in err and "no such directory" in err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_other_input_mistakes(tmp_path):
    img = tmp_path / "a.png"
    io.write_image(str(img), _frame())
    with pytest.raises(InputError, match="single image"):
        open_frames([img])
    with pytest.raises(InputError, match="no such file"):
        open_frames([tmp_path / "missing.png", img])
    with pytest.raises(InputError, match="is a folder"):
        open_frames([img, tmp_path])
    seq = open_frames([img, img, img], max_frames=2)
    assert len(seq) == 2 and seq.size == (16, 24)


def test_video_round_trip_and_frames(tmp_path):
    frames = [_frame(16, 24, 40 * i) for i in range(4)]
    with VideoWriter(str(tmp_path / "v.mp4"), fps=5) as w:
        for f in frames:
            w.write(f)
    seq = open_frames([tmp_path / "v.mp4"])
    assert seq.kind == "video" and len(seq) == 4 and seq.size == (16, 24) and seq.fps == 5
    got = list(seq.frames())
    assert len(got) == 4 and got[0].shape == (16, 24, 3)
    # lossy codec: the frames come back close, and in order
    means = [g[..., 0].astype(float).mean() for g in got]
    assert np.all(np.diff(means) > 20)
    with VideoWriter(str(tmp_path / "v.gif"), fps=4) as w:
        for f in frames:
            w.write(f)
    from PIL import Image

    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.n_frames == 4
    # an error inside the block leaves no file behind
    with pytest.raises(ValueError, match="differs"):
        with VideoWriter(str(tmp_path / "bad.mp4")) as w:
            w.write(frames[0])
            w.write(_frame(8, 8))
    assert sorted(os.listdir(tmp_path)) == ["v.gif", "v.mp4"]


def _fake_estimator(calls):
    """Flow = mean colour difference, per pair; records the batch sizes it is called with."""

    def est(im1, im2, *, flow_init=None, cache=None):
        im1, im2 = np.asarray(im1, np.float32), np.asarray(im2, np.float32)
        calls.append(im1.shape[0])
        b, h, w, _ = im1.shape
        d = (im2 - im1).mean(axis=(1, 2, 3))
        flow = np.broadcast_to(d[:, None, None, None], (b, h, w, 2)).astype(np.float32)
        low = np.zeros((b, h // 8 or 1, w // 8 or 1, 2), np.float32)
        one = np.ones(b)
        return Estimate(flow, low, low, one.astype(int), one, one, 0.5, one.astype(int), one > 0)
    return est


def test_batched_pairs_match_one_by_one():
    frames = [_frame(16, 24, 7 * i * i) for i in range(6)]          # 5 pairs
    calls = []
    batched = list(run_sequence(_fake_estimator(calls), frames, "none", batch_size=2))
    assert calls == [2, 2, 2]                                       # last batch padded to 2
    single = list(run_sequence(_fake_estimator([]), frames, "none"))
    assert [i for i, _ in batched] == list(range(5))
    for (_, a), (_, b) in zip(batched, single):
        np.testing.assert_array_equal(a.flow, b.flow)
        assert a.flow.shape[0] == 1
    with pytest.raises(ValueError, match="reuse"):
        list(run_sequence(_fake_estimator([]), frames, "reuse", batch_size=2))


def test_checkpoint_kind(tmp_path):
    from deq_flow_jax.checkpoints import kind as checkpoint_kind

    model = tmp_path / "model"
    model.mkdir()
    (model / "model_config.json").write_text("{}")
    assert checkpoint_kind(model) == "model"
    work = tmp_path / "work"
    (work / "checkpoints").mkdir(parents=True)
    (work / "model_config.json").write_text("{}")          # workdirs carry one too
    assert checkpoint_kind(work) == "workdir"
    with pytest.raises(FileNotFoundError, match="neither a model directory"):
        checkpoint_kind(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        checkpoint_kind(tmp_path / "nope")
