"""Every command against bad input: one line naming the culprit, exit 2, no traceback,
and nothing outside the intended output changed (the whole tmp tree is hashed before
and after). The model is replaced by a fake where a test is about paths and flags.
"""
import json
import os
import stat

import numpy as np
import pytest
from cli_safety_helpers import (
    assert_one_line_error,
    run,
    tree_state,
    use_fake_model,
    write_frames,
)

from deq_flow_jax import io
from deq_flow_jax.io.outputs import MARKER

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYNTHETIC = os.path.join(ROOT, "deq_flow_jax", "configs", "synthetic.py")


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "frames"
    write_frames(folder, 3)
    return folder


# ----------------------------------------------------------------- overlapping outputs

@pytest.mark.parametrize("where", ["same", "parent", "child"])
def test_infer_output_overlapping_the_input_is_refused(tmp_path, frames, capsys, monkeypatch, where):
    use_fake_model(monkeypatch)
    out = {"same": frames, "parent": tmp_path, "child": frames / "flow_out"}[where]
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "infer", frames, "--out", out, "--overwrite", "--no-progress")
    assert_one_line_error(rc, err, "infer", str(out), "--out", "input")
    assert tree_state(tmp_path) == before


def test_infer_overwrite_replaces_only_its_own_output(tmp_path, frames, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "infer", frames, "--out", mine, "--overwrite", "--no-progress")
    assert_one_line_error(rc, err, "infer", str(mine), "not written by deq-flow")
    assert tree_state(tmp_path) == before
    # a file, a symbolic link: refused too
    (tmp_path / "file").write_text("x")
    os.symlink(mine, tmp_path / "link")
    before = tree_state(tmp_path)
    for target, words in ((tmp_path / "file", "not a folder"), (tmp_path / "link", "symbolic link")):
        rc, _, err = run(capsys, "infer", frames, "--out", target, "--overwrite", "--no-progress")
        assert_one_line_error(rc, err, "infer", str(target), words)
    assert tree_state(tmp_path) == before
    # its own output (with the marker) is replaced, and only that folder changes
    out = tmp_path / "out"
    assert run(capsys, "infer", frames, "--out", out, "--no-progress")[0] == 0
    assert (out / MARKER).is_file()
    (out / "flow" / "f00.flo").write_bytes(b"stale")
    before = tree_state(tmp_path)
    assert run(capsys, "infer", frames, "--out", out, "--overwrite", "--no-progress")[0] == 0
    after = tree_state(tmp_path)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed and all(k.startswith("out" + os.sep) for k in changed), changed
    assert io.read_flo(out / "flow" / "f00.flo").shape == (16, 24, 2)


def test_eval_and_export_outputs(tmp_path, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    folder = tmp_path / "existing"
    folder.mkdir()
    stranger = tmp_path / "results.json"
    stranger.write_text('{"mine": 1}')
    before = tree_state(tmp_path)
    cases = [
        (("eval", "--dataset", "synthetic", "--out", folder, "--overwrite"), "eval", [str(folder), "is a folder"]),
        (("eval", "--dataset", "synthetic", "--out", stranger, "--overwrite"), "eval",
         [str(stranger), "not written by deq-flow"]),
        (("eval", "--dataset", "synthetic", "--out", stranger), "eval", [str(stranger), "--overwrite"]),
        (("eval", "--dataset", "chairs", "--submit", tmp_path / "s"), "eval", ["--submit", "Sintel or KITTI"]),
        (("eval", "--dataset", "synthetic", "--data-dir", tmp_path, "--out", tmp_path / "r.json"), "eval",
         ["--out", "inside the input", "--data-dir"]),
        (("eval", "--dataset", "synthetic", "--out", tmp_path / "p" / "r.json", "--panels", tmp_path / "p"),
         "eval", ["--out", "inside the output", "--panels", "do not overlap"]),
        (("export", "--height", 16, "--width", 16, "--out", folder, "--overwrite"), "export",
         [str(folder), "is a folder"]),
        (("export", "--height", 16, "--width", 16, "--out", stranger, "--overwrite"), "export",
         [str(stranger), "not written by deq-flow"]),
        (("export", "--height", 16, "--width", 16, "--checkpoint", folder, "--out", folder / "x"), "export",
         ["--out", "inside the input", "--checkpoint"]),
    ]
    for argv, command, words in cases:
        rc, _, err = run(capsys, *argv)
        assert_one_line_error(rc, err, command, *words)
    assert tree_state(tmp_path) == before


def test_outputs_that_cannot_be_written_name_the_users_path(tmp_path, frames, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    before = tree_state(tmp_path)
    for argv, command in (
            (("infer", frames, "--out", blocker / "out", "--no-progress"), "infer"),
            (("eval", "--dataset", "synthetic", "--out", blocker / "r.json"), "eval"),
            (("export", "--height", 16, "--width", 16, "--out", blocker / "m.jaxexp"), "export"),
            (("infer", frames, "--out", tmp_path / "missing" / "out", "--no-progress"), "infer")):
        rc, _, err = run(capsys, *argv)
        line = assert_one_line_error(rc, err, command, str(argv[argv.index("--out") + 1]))
        assert ".tmp" not in line
    assert tree_state(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path, frames, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, _, err = run(capsys, "infer", frames, "--out", ro / "out", "--no-progress")
        line = assert_one_line_error(rc, err, "infer", str(ro / "out"), "permission denied")
        assert ".tmp" not in line
    finally:
        ro.chmod(0o755)


# ----------------------------------------------------------------- numeric and other flags

BAD_FLAGS = [
    (["infer", "F", "--out", "O", "--max-frames", "-1"], "--max-frames"),
    (["infer", "F", "--out", "O", "--max-frames", "1"], "--max-frames"),
    (["infer", "F", "--out", "O", "--fps", "0"], "--fps"),
    (["infer", "F", "--out", "O", "--fps", "nan"], "--fps"),
    (["infer", "F", "--out", "O", "--max-flow", "0"], "--max-flow"),
    (["infer", "F", "--out", "O", "--batch-size", "0"], "--batch-size"),
    (["infer", "F", "--out", "O", "--max-steps", "0"], "--max-steps"),
    (["infer", "F", "--out", "O", "--f-thres", "0"], "--f-thres"),
    (["infer", "F", "--out", "O", "--eval-factor", "-1"], "--eval-factor"),
    (["infer", "F", "--out", "O", "--tol", "inf"], "--tol"),
    (["infer", "F", "--out", "O", "--video", "avi"], "--video"),
    (["infer", "F", "--out", "O", "--batch-size", "2"], "--batch-size"),
    (["infer", "F"], "--out"),
    (["eval", "--dataset", "synthetic", "--limit", "-1"], "--limit"),
    (["eval", "--dataset", "synthetic", "--num-panels", "0"], "--num-panels"),
    (["eval", "--dataset", "synthetic", "--max-flow", "0"], "--max-flow"),
    (["eval", "--dataset", "synthetic", "--synthetic-size", "8", "32"], "--synthetic-size"),
    (["eval", "--dataset", "nowhere"], "--dataset"),
    (["export", "--out", "x", "--height", "8", "--width", "32"], "--height"),
    (["export", "--out", "x", "--height", "32", "--width", "32", "--batch", "0"], "--batch"),
    (["export", "--out", "x", "--height", "32", "--width", "32", "--platforms", "cpu,gpu9"], "--platforms"),
    (["prepare", "synthetic", "--num-frames", "1"], "--num-frames"),
    (["prepare", "synthetic", "--seed", "-3"], "--seed"),
    (["prepare", "mnist"], "dataset"),
    (["init", "--out", "x", "--seed", "x"], "--seed"),
    (["train", "--config", SYNTHETIC, "--workdir", "w", "--num_processes", "0"], "--num_processes"),
    (["train", "--config", SYNTHETIC, "--workdir", "w", "--config.num_steps=abc"], "--config.num_steps"),
    (["train", "--config", SYNTHETIC, "--workdir", "w", "--config.no_such=1"], "--config.no_such"),
    (["train", "--config", "no_such_config.py", "--workdir", "w"], "no_such_config.py"),
    (["demo", "--num_viz", "-1"], "--num_viz"),
    (["ablate", "--workdir", "w"], "--config"),
]


@pytest.mark.parametrize("argv,culprit", BAD_FLAGS, ids=[" ".join(a[0][:1] + a[0][-2:]) for a in BAD_FLAGS])
def test_bad_flags_are_named_before_any_work(tmp_path, capsys, monkeypatch, argv, culprit):
    monkeypatch.chdir(tmp_path)
    use_fake_model(monkeypatch)
    rc, _, err = run(capsys, *argv)
    assert_one_line_error(rc, err, argv[0], culprit)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", ["train", "demo", "ablate", "eval", "infer", "export", "prepare",
                                     "convert", "init", "widen"])
def test_unknown_flag_of_every_command(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, command, "--bogus-flag")
    assert_one_line_error(rc, err, command, "--bogus-flag")
    rc, out, err = run(capsys, command, "--help")
    assert rc == 0 and f"deq-flow {command}" in out and not err
    assert os.listdir(tmp_path) == []


def test_solver_budget_below_one_names_its_flags(tmp_path, frames, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "o", "--f-thres", "1", "--eval-factor", "0.5")
    assert_one_line_error(rc, err, "infer", "--f-thres x --eval-factor")
    assert not (tmp_path / "o").exists()


def test_missing_checkpoint_is_one_clear_line(tmp_path, frames, capsys, monkeypatch):
    from deq_flow_jax import pretrained

    empty = tmp_path / "no_models"                # whether or not the package ships a model
    empty.mkdir()
    monkeypatch.setenv(pretrained.ENV_VAR, str(empty))
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "o", "--no-progress")
    assert_one_line_error(rc, err, "infer", "--checkpoint", "pretrained")
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "o", "--checkpoint", frames)
    assert_one_line_error(rc, err, "infer", "--checkpoint", str(frames))
    assert tree_state(tmp_path) == before


# ----------------------------------------------------------------- frames and flow

def test_same_frame_names_in_two_folders_get_distinct_outputs(tmp_path, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    a = write_frames(tmp_path / "a", 2, names=["0001.png", "0002.png"], seed=1)
    b = write_frames(tmp_path / "b", 2, names=["0001.png", "0002.png"], seed=2)
    out = tmp_path / "out"
    rc, _, err = run(capsys, "infer", *a, *b, "--out", out, "--no-progress", "--video", "none")
    assert rc == 0, err
    assert sorted(os.listdir(out / "flow")) == ["a__0001_png.flo", "a__0002_png.flo", "b__0001_png.flo"]
    stats = json.loads((out / "stats.json").read_text())
    assert len({p["name"] for p in stats["pairs"]}) == 3


def test_non_finite_flow_is_an_error_naming_the_pair(tmp_path, frames, capsys, monkeypatch):
    use_fake_model(monkeypatch, nan_pairs={1})
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "out", "--no-progress")
    assert_one_line_error(rc, err, "infer", "f01.png -> ", "f02.png", "non-finite")
    assert tree_state(tmp_path) == before


def test_corrupt_last_frame_is_found_before_any_pair(tmp_path, frames, capsys, monkeypatch):
    fake = use_fake_model(monkeypatch)
    last = frames / "f02.png"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])          # header intact, pixels cut
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "out", "--no-progress")
    assert_one_line_error(rc, err, "infer", "f02.png")
    assert fake.calls == 0
    assert tree_state(tmp_path) == before


def test_files_without_an_image_extension_are_reported(tmp_path, frames, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    (frames / "notes.txt").write_text("x")
    (frames / "f03.raw").write_bytes(b"\0" * 10)
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "out", "--no-progress")
    assert rc == 0
    assert "warning" in err and "2 file(s) without an image extension" in err
    assert "f03.raw" in err and "notes.txt" in err


@pytest.mark.parametrize("garbage,words", [(b"", "empty"), (b"\x89PNG\r\n\x1a\nxx", "cannot read"),
                                           (b"GIF89a" + b"\0" * 20, "cannot read")])
def test_bad_images(tmp_path, frames, capsys, monkeypatch, garbage, words):
    use_fake_model(monkeypatch)
    (frames / "f01.png").write_bytes(garbage)
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "out", "--no-progress")
    assert_one_line_error(rc, err, "infer", "f01.png")
    assert tree_state(tmp_path) == before


# ----------------------------------------------------------------- files: umask, JSON

def test_outputs_honour_the_umask(tmp_path, frames, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    old = os.umask(0o027)
    try:
        assert run(capsys, "infer", frames, "--out", tmp_path / "out", "--no-progress", "--video", "gif")[0] == 0
        io.atomic_write_bytes(tmp_path / "plain.bin", b"x")
    finally:
        os.umask(old)
    modes = {p: stat.S_IMODE(os.stat(os.path.join(tmp_path, p)).st_mode)
             for p in ("out", "out/flow", "out/flow/f00.flo", "out/color/f00.png", "out/stats.json",
                       "out/flow.gif", "plain.bin")}
    assert modes == {"out": 0o750, "out/flow": 0o750, "out/flow/f00.flo": 0o640,
                     "out/color/f00.png": 0o640, "out/stats.json": 0o640, "out/flow.gif": 0o640,
                     "plain.bin": 0o640}, modes


def _strict_load(text):
    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_json_is_strict(tmp_path, capsys, monkeypatch):
    text = io.dumps_json({"a": float("nan"), "b": [1.0, np.float32("inf")], "c": {"d": 2.0}})
    data = _strict_load(text)
    assert data == {"a": None, "b": [1.0, None], "c": {"d": 2.0}, "non_finite": ["a", "b[1]"]}
    # one pair: the mean time "after the first pair" has no value -> null with the note
    use_fake_model(monkeypatch)
    write_frames(tmp_path / "two", 2)
    assert run(capsys, "infer", tmp_path / "two", "--out", tmp_path / "out", "--no-progress")[0] == 0
    stats = _strict_load((tmp_path / "out" / "stats.json").read_text())
    assert stats["mean_seconds_after_first"] is None
    assert stats["non_finite"] == ["mean_seconds_after_first"]


# ----------------------------------------------------------------- internal errors

def test_internal_errors_are_one_line_with_a_hint(tmp_path, frames, capsys, monkeypatch):
    use_fake_model(monkeypatch)
    from deq_flow_jax.evaluate import infer

    def boom(*a, **k):
        raise RuntimeError("something broke\nover two lines")
    monkeypatch.setattr(infer, "infer_frames", boom)
    monkeypatch.delenv("DEQ_FLOW_DEBUG", raising=False)
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "o")
    assert_one_line_error(rc, err, "infer", "internal error", "RuntimeError", "something broke over two lines",
                          "report", "DEQ_FLOW_DEBUG=1", code=1)
    monkeypatch.setenv("DEQ_FLOW_DEBUG", "1")
    rc, _, err = run(capsys, "infer", frames, "--out", tmp_path / "o")
    assert rc == 1 and "Traceback" in err and "boom" in err


# ----------------------------------------------------------------- prepare: bad ground truth

def _chairs(root, flows):
    """A FlyingChairs copy with one pair per flow array (or raw bytes) in `flows`."""
    data = root / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, flow in enumerate(flows, start=1):
        for k in (1, 2):
            io.write_image(data / f"{i:05d}_img{k}.ppm", rng.integers(0, 255, (8, 12, 3), dtype=np.uint8))
        if isinstance(flow, bytes):
            (data / f"{i:05d}_flow.flo").write_bytes(flow)
        else:
            io.write_flo(data / f"{i:05d}_flow.flo", flow)
    (root / "FlyingChairs_train_val.txt").write_text("\n".join("1" for _ in flows) + "\n")


@pytest.mark.parametrize("bad,words", [
    (b"XXXX" + b"\0" * 20, "bad .flo magic"),
    (np.full((8, 12, 2), np.nan, np.float32), "non-finite"),
    (np.pad(np.full((1, 1, 2), np.inf, np.float32), ((3, 4), (5, 6), (0, 0))), "non-finite"),
], ids=["corrupt", "nan", "inf"])
def test_prepare_rejects_bad_ground_truth_and_leaves_no_folders(tmp_path, capsys, bad, words):
    manual = tmp_path / "chairs"
    _chairs(manual, [np.zeros((8, 12, 2), np.float32), bad])
    before = tree_state(tmp_path)
    for data_dir in (tmp_path / "new" / "tfds", tmp_path):     # a new folder, an existing one
        rc, _, err = run(capsys, "prepare", "chairs", "--manual-dir", manual, "--data-dir", data_dir)
        assert_one_line_error(rc, err, "prepare", "00002_flow.flo", words)
        assert tree_state(tmp_path) == before


def test_prepare_rejects_a_corrupt_kitti_png(tmp_path, capsys):
    root = tmp_path / "KITTI" / "training"
    for i in range(2):
        for k in (10, 11):
            io.write_image(root / "image_2" / f"{i:06d}_{k}.png", np.zeros((8, 12, 3), np.uint8))
        io.write_kitti_flow(root / "flow_occ" / f"{i:06d}_10.png", np.ones((8, 12, 2)))
    (root / "flow_occ" / "000001_10.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "prepare", "kitti", "--manual-dir", tmp_path, "--data-dir", tmp_path / "d")
    assert_one_line_error(rc, err, "prepare", "000001_10.png")
    assert tree_state(tmp_path) == before


# ----------------------------------------------------------------- signals

_DRIVER = """
import sys, time
sys.path.insert(0, {tests!r})
import numpy as np
from deq_flow_jax import cli
from deq_flow_jax.cli import model_args
from deq_flow_jax.evaluate import estimator
from cli_safety_helpers import FakeEstimator

class Slow(FakeEstimator):
    def __call__(self, *a, **k):
        if FakeEstimator.calls >= 1:
            print("computing", flush=True)
            time.sleep(60)
        return super().__call__(*a, **k)

model_args.load_checkpoint_arg = lambda path, which="best": (None, None, {{}})
estimator.FlowEstimator = Slow
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig,code,word", [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
def test_signals_during_infer_leave_nothing_behind(tmp_path, frames, sig, code, word):
    import signal
    import subprocess
    import sys

    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER.format(tests=os.path.dirname(os.path.abspath(__file__))))
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT
    # (no KeyboardInterrupt): give the child the default disposition whatever started pytest.
    proc = subprocess.Popen([sys.executable, str(driver), "infer", str(frames), "--out", str(work / "out"),
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=str(tmp_path),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "computing"   # first pair written, second running
        assert any(p.startswith(".tmp-out-") for p in os.listdir(work))
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert_one_line_error(proc.returncode, err, "infer", word, code=code)
    assert os.listdir(work) == []


@pytest.mark.parametrize("kind", ["nan_pfm", "corrupt_pfm", "one_channel_pfm"])
def test_load_pair_rejects_bad_things_flow(tmp_path, kind):
    from data_prep.common import PairFiles, load_pair
    from deq_flow_jax.io import FlowFormatError

    rng = np.random.default_rng(0)
    for k in (1, 2):
        io.write_image(tmp_path / f"{k}.png", rng.integers(0, 255, (8, 12, 3), dtype=np.uint8))
    pfm = tmp_path / "flow.pfm"
    if kind == "nan_pfm":
        flow = np.zeros((8, 12, 2), np.float32)
        flow[3, 4, 1] = np.nan
        io.write_pfm(pfm, flow)
    elif kind == "corrupt_pfm":
        pfm.write_bytes(b"PF\n12 8\n-1.0\n" + b"\0" * 100)
    else:
        io.write_pfm(pfm, np.zeros((8, 12), np.float32))
    pair = PairFiles(str(tmp_path / "1.png"), str(tmp_path / "2.png"), str(pfm), "dense", "s", 0, "0")
    with pytest.raises(FlowFormatError, match=str(pfm)):
        load_pair(pair)


def test_config_file_and_overrides_are_parsed_in_process():
    from deq_flow_jax.cli.config_args import parse_config_command
    from deq_flow_jax.cli.train import build_parser

    args = parse_config_command(build_parser(), [
        "--config", SYNTHETIC, "--workdir", "w", "--config.num_steps=3", "--config.data.crop_size=(48,64)",
        "--config.deq.f_max_steps", "6", "--process_id", "0"], ("config", "workdir"))
    c = args.config
    assert (c.num_steps, tuple(c.data.crop_size), c.deq.f_max_steps) == (3, (48, 64), 6)
    assert (args.workdir, args.process_id, args.num_processes) == ("w", 0, None)


# ----------------------------------------------------------------- working folders

@pytest.mark.parametrize("command", ["train", "demo", "ablate"])
def test_workdir_holding_a_users_files_is_refused_untouched(tmp_path, capsys, command):
    """train / demo / ablate write config.json, train.jsonl, checkpoints/ ... into --workdir in
    place: a folder with files deq-flow did not write is refused before anything is written."""
    work = tmp_path / "my_project"
    work.mkdir()
    (work / "config.json").write_text('{"mine": true}')
    (work / "train.jsonl").write_text("my notes\n")
    before = tree_state(tmp_path)
    config = {"train": SYNTHETIC, "demo": os.path.join(ROOT, "deq_flow_jax", "configs", "demo.py"),
              "ablate": os.path.join(ROOT, "deq_flow_jax", "configs", "ablation.py")}[command]
    argv = [command, "--config", config, "--workdir", work]
    if command == "demo":
        argv += ["--config.data.data_dir", tmp_path / "data"]
    rc, _, err = run(capsys, *argv)
    assert_one_line_error(rc, err, command, str(work), "--workdir", ".deq-flow-workdir")
    assert tree_state(tmp_path) == before


def test_claim_workdir_rules(tmp_path):
    from deq_flow_jax.io.outputs import WORKDIR_MARKER, OutputError, claim_workdir

    new = tmp_path / "a" / "b"                               # missing parents are made
    assert claim_workdir(new, "train") == str(new)
    assert json.loads((new / WORKDIR_MARKER).read_text())["command"] == "train"
    (new / "train.jsonl").write_text("{}\n")
    assert claim_workdir(new, "train") == str(new)           # its own folder: resumed
    empty = tmp_path / "empty"
    empty.mkdir()
    claim_workdir(empty, "demo")
    # A workdir written before the marker existed (config sections + model_config.json).
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"model": {}, "deq": {}, "data": {}, "lr": 1e-4}))
    (old / "model_config.json").write_text("{}")
    claim_workdir(old, "train")
    assert (old / WORKDIR_MARKER).is_file()
    # Refused: a file, a folder with other files, an output folder of `infer` (its marker is
    # not a workdir's), and a config.json without the training sections.
    (tmp_path / "f").write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"model": {}}))
    (foreign / "model_config.json").write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text("{}")
    for path, words in ((tmp_path / "f", "not a folder"), (foreign, "did not write"),
                        (out, "did not write")):
        state = tree_state(tmp_path)
        with pytest.raises(OutputError, match=words):
            claim_workdir(path, "train")
        assert tree_state(tmp_path) == state


def test_legacy_training_workdir_resumes(tmp_path):
    """The committed training state (training/cpu_pretrain, written before the marker) is
    still accepted as a workdir: train resumes it."""
    import shutil

    from deq_flow_jax.io.outputs import WORKDIR_MARKER, claim_workdir

    src = os.path.join(ROOT, "training", "cpu_pretrain")
    if not os.path.isdir(src):
        pytest.skip("no committed training state")
    dst = tmp_path / "run"
    os.makedirs(dst)
    for name in ("config.json", "model_config.json", "train.jsonl"):
        shutil.copy(os.path.join(src, name), dst / name)
    assert claim_workdir(dst, "train") == str(dst) and (dst / WORKDIR_MARKER).is_file()


def test_infer_that_would_not_fit_in_memory_is_refused_before_loading(tmp_path, capsys, monkeypatch):
    """A frame size whose estimated peak memory exceeds what the machine has is one line naming
    the input and the --max-size that fits; nothing is loaded or written."""
    from deq_flow_jax.cli import common
    from deq_flow_jax.cli.common import CliError
    from deq_flow_jax.cli.model_args import check_memory
    from deq_flow_jax.model.inference import inference_memory_bytes

    fake = use_fake_model(monkeypatch)
    paths = write_frames(tmp_path / "frames", 2, size=(48, 64))
    monkeypatch.setattr(common, "available_memory_bytes", lambda: 0.85e9)
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "infer", *paths, "--out", tmp_path / "out", "--max-size", "0")
    assert_one_line_error(rc, err, "infer", paths[0], "48x64", "GB", "free some memory")
    assert tree_state(tmp_path) == before and fake.calls == 0
    # 1080p frames with 8 GB: the suggested --max-size fits, one step more would not.
    monkeypatch.setattr(common, "available_memory_bytes", lambda: 8e9)
    with pytest.raises(CliError, match="pass --max-size") as exc:
        check_memory(paths[0], (1080, 1920), (1080, 1920), 1)
    fit = int(str(exc.value).split("--max-size ")[1].split()[0])
    assert inference_memory_bytes(fit * 1080 // 1920, fit, 1) <= 0.9 * 8e9
    assert inference_memory_bytes((fit + 64) * 1080 // 1920, fit + 64, 1) > 0.9 * 8e9
    check_memory(paths[0], (1080, 1920), (576, 1024), 1)   # the default size fits in 8 GB
