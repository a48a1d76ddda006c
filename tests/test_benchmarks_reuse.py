"""benchmarks/reuse.py: fixed-point reuse on rendered layered video, end to end on a tiny
random model, and its flag checks (one line naming the flag, no traceback)."""
import json

import numpy as np
import pytest
from training_helpers import benchmark_module


def _benchmark():
    return benchmark_module("reuse")


def test_reuse_benchmark_on_layered_video(tmp_path, capsys):
    bench = _benchmark()
    out = tmp_path / "reuse.json"
    report = bench.main(["--init", "tiny", "--dataset", "layered", "--sequences", "2", "--frames", "3",
                         "--height", "64", "--width", "96", "--max-steps", "3", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report, default=float))
    assert report["data"] == {"dataset": "layered", "height": 64, "width": 96, "sequences": 2, "pairs": 4}
    assert set(report["results"]) == {"none", "warm", "reuse"}
    scenes = {"video_validation_0000000", "video_validation_0000001"}
    for mode, r in report["results"].items():
        assert np.isfinite(r["epe"]) and 0.0 <= r["1px"] <= 100.0, (mode, r)
        assert set(r["steps_per_sequence"]) == scenes
        assert all(len(steps) == 2 and all(1 <= s <= 3 for s in steps)
                   for steps in r["steps_per_sequence"].values())
    # The first pair of a sequence has nothing to reuse: solved alike in every mode.
    for scene in scenes:
        assert len({r["steps_per_sequence"][scene][0] for r in report["results"].values()}) == 1
    assert report["results"]["none"]["step_ratio_vs_none"] == 1.0
    table = capsys.readouterr().out
    assert all(f"\n{mode} " in table for mode in ("none", "warm", "reuse"))


def test_reuse_benchmark_flags(capsys):
    bench = _benchmark()
    args = bench.parse_args(["--init", "tiny"])
    assert args.dataset == "synthetic" and (args.height, args.width) == (96, 128)   # unchanged default
    # The pairs of the layered path: consecutive frames of one scene, shared between pairs.
    items = list(bench.sequences(bench.parse_args(["--init", "tiny", "--dataset", "layered", "--sequences", "1",
                                                   "--frames", "3", "--height", "32", "--width", "48"])))
    (scene, pairs), = items
    assert [p["meta"]["frame"] for p in pairs] == [0, 1] and {p["meta"]["scene"] for p in pairs} == {scene}
    np.testing.assert_array_equal(pairs[0]["image2"], pairs[1]["image1"])
    assert pairs[0]["image1"].shape == (32, 48, 3) and pairs[0]["flow"].shape == (32, 48, 2)
    for argv, flag in ((["--frames", "1"], "--frames"), (["--sequences", "0"], "--sequences"),
                       (["--dataset", "layered", "--height", "16"], "--height"),
                       (["--dataset", "video"], "--dataset")):
        with pytest.raises(SystemExit) as exc:
            bench.parse_args(["--init", "tiny", *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]
        assert flag in last and "error" in last and "Traceback" not in err, err


def test_reuse_benchmark_bad_checkpoint_and_foreign_json_are_one_line(tmp_path, capsys):
    bench = _benchmark()
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": 1}')
    cases = ((["--checkpoint", str(tmp_path / "missing")], "missing"),
             (["--init", "tiny", "--json", str(foreign)], "--json"),
             (["--init", "tiny", "--json", str(foreign), "--overwrite"], "not written by deq-flow"))
    for argv, words in cases:
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err, err
    assert foreign.read_text() == '{"mine": 1}'
