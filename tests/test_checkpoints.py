"""deq_flow_jax.checkpoints: one loader for model directories and training workdirs, integrity
(checksums, shapes against the config, finite values) and saving that never destroys data."""
import json
import os

import chex
import jax
import numpy as np
import pytest
from checkpoint_helpers import TINY_DEQ, largest_file, make_workdir, scramble, tiny_variables, tree_hash, truncate

from deq_flow_jax import checkpoints, model_io
from deq_flow_jax.model import DEQConfig, ModelConfig


@pytest.fixture(scope="module")
def tiny():
    return tiny_variables()


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    variables, cfg = tiny
    root = tmp_path_factory.mktemp("saved")
    plain = checkpoints.save(str(root / "plain"), variables, cfg)
    with_deq = checkpoints.save(str(root / "deq"), variables, cfg, DEQConfig(**TINY_DEQ))
    return plain, with_deq


@pytest.fixture(scope="module")
def workdir(tiny, tmp_path_factory):
    variables, cfg = tiny
    return make_workdir(tmp_path_factory.mktemp("wd") / "run", variables, cfg)


def _one_line(err):
    text = str(err)
    assert "\n" not in text and text, text
    return text


def test_model_dir_round_trip_and_eval_budget(tiny, saved):
    variables, cfg = tiny
    plain, with_deq = saved
    assert sorted(os.listdir(plain)) == ["SHA256SUMS", "model_config.json", "variables.msgpack"]
    got, got_cfg, deq = checkpoints.load(plain)
    assert got_cfg == cfg and deq is None
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, got),
                                jax.tree.map(np.asarray, variables))
    # No stored solver config: the one documented fallback, the official 40 x 1.5 = 60.
    assert checkpoints.evaluation_deq(deq).eval_max_steps == 60
    assert checkpoints.evaluation_deq(deq) == checkpoints.FALLBACK_DEQ
    _, _, deq = checkpoints.load(with_deq)
    assert deq == DEQConfig(**TINY_DEQ)
    assert checkpoints.evaluation_deq(deq).eval_max_steps == 24        # 12 x 2.0
    assert checkpoints.describe(with_deq) == (cfg, deq)


def test_scrambled_weights_name_the_file(saved, tmp_path):
    import shutil
    bad = shutil.copytree(saved[0], tmp_path / "bad")
    scramble(bad / "variables.msgpack")
    with pytest.raises(checkpoints.CheckpointError) as e:
        checkpoints.load(str(bad))
    text = _one_line(e.value)
    assert str(bad / "variables.msgpack") in text and "checksum mismatch" in text


def test_truncated_or_missing_weights_name_the_file(saved, tmp_path):
    import shutil
    bad = shutil.copytree(saved[0], tmp_path / "bad")
    truncate(bad / "variables.msgpack")
    with pytest.raises(ValueError, match="variables.msgpack: checksum mismatch") as e:
        checkpoints.load(str(bad))
    _one_line(e.value)
    os.remove(bad / "variables.msgpack")
    with pytest.raises(ValueError, match="variables.msgpack: listed in SHA256SUMS but missing"):
        checkpoints.load(str(bad))
    os.remove(bad / "SHA256SUMS")
    with pytest.raises(ValueError, match="SHA256SUMS: missing"):
        checkpoints.load(str(bad))


def test_non_finite_weights_are_refused_even_with_good_checksums(tiny, tmp_path):
    variables, cfg = tiny
    bad = jax.tree.map(np.array, variables)
    bad["params"]["fnet"]["conv1"]["kernel"][0, 0, 0, 0] = np.nan
    path = model_io.write_model_dir(str(tmp_path / "nan"), bad, cfg)    # bypasses the check
    with pytest.raises(checkpoints.CheckpointError, match="fnet/conv1/kernel holds non-finite"):
        checkpoints.load(path)
    with pytest.raises(checkpoints.CheckpointError, match="non-finite"):
        checkpoints.save(str(tmp_path / "never"), bad, cfg)
    assert not (tmp_path / "never").exists()


def test_weights_of_another_variant(tiny, tmp_path):
    variables, cfg = tiny
    path = tmp_path / "swapped"
    model_io.write_model_dir(str(path), variables, cfg)
    # Put a B config next to the tiny weights (and fix the manifest, as a careless copy would).
    conf = json.loads((path / "model_config.json").read_text())
    conf["model"] = ModelConfig.variant("B").to_dict()
    (path / "model_config.json").write_text(json.dumps(conf))
    sums = "".join(f"{model_io.sha256_file(str(path / n))}  {n}\n" for n in model_io.CHECKSUMMED)
    (path / "SHA256SUMS").write_text(sums)
    with pytest.raises(checkpoints.CheckpointError) as e:
        checkpoints.load(str(path))
    text = _one_line(e.value)
    assert str(path / "variables.msgpack") in text and "variant B" in text
    assert "has shape" in text and "the config expects" in text
    # The same swap without fixing the manifest is caught by the checksum of the config.
    (path / "SHA256SUMS").write_text(sums.replace(sums[:8], "0" * 8, 1))
    with pytest.raises(ValueError, match="model_config.json: checksum mismatch"):
        checkpoints.load(str(path))


def test_workdir_best_latest_and_describe(tiny, workdir):
    variables, cfg = tiny
    best, got_cfg, deq = checkpoints.load(workdir, "best")           # step 5 has val epe
    assert got_cfg == cfg and deq == DEQConfig(**TINY_DEQ)
    np.testing.assert_array_equal(best["params"]["fnet"]["conv1"]["kernel"],
                                  np.asarray(variables["params"]["fnet"]["conv1"]["kernel"]) + 5)
    latest, _, _ = checkpoints.load(workdir, "latest")
    np.testing.assert_array_equal(latest["params"]["fnet"]["conv1"]["kernel"],
                                  np.asarray(variables["params"]["fnet"]["conv1"]["kernel"]) + 7)
    assert checkpoints.workdir_checkpoint(workdir, "best") == (5, {"epe": 3.0})
    assert checkpoints.describe(workdir) == (cfg, DEQConfig(**TINY_DEQ))
    chex.assert_trees_all_equal(checkpoints.load(workdir, "best")[0], best)
    with pytest.raises(ValueError, match="which"):
        checkpoints.load(workdir, "newest")


@pytest.mark.parametrize("damage", [scramble, truncate])
def test_damaged_workdir_checkpoint_is_one_clean_error(workdir, tmp_path, damage):
    import shutil
    bad = shutil.copytree(workdir, tmp_path / "run")
    damage(largest_file(bad / "checkpoints" / "5" / "state"))           # the weight data
    with pytest.raises(checkpoints.CheckpointError) as e:
        checkpoints.load(str(bad), "best")
    text = _one_line(e.value)
    assert str(bad / "checkpoints" / "5" / "state") in text and "checksum mismatch" in text
    # A workdir of an older version (no SHA256SUMS) still gives one line naming the checkpoint.
    os.remove(bad / "checkpoints" / "5" / "SHA256SUMS")
    with pytest.raises(checkpoints.CheckpointError) as e:
        checkpoints.load(str(bad), "best")
    assert str(bad / "checkpoints" / "5") in _one_line(e.value)


def test_damaged_checkpoint_in_the_cli_is_one_line_and_nothing_at_exit(workdir, tmp_path):
    """A damaged checkpoint without SHA256SUMS makes orbax fail mid-read and abandon its read
    coroutines; in a fresh process the CLI still prints one line on stderr and nothing more at
    interpreter exit (the test process, where they are collected later, filters the warnings
    they raise there: setup.cfg)."""
    import shutil
    import subprocess
    import sys

    from deq_flow_jax.io import write_image
    bad = shutil.copytree(workdir, tmp_path / "run")
    truncate(largest_file(bad / "checkpoints" / "5" / "state"))
    os.remove(bad / "checkpoints" / "5" / "SHA256SUMS")
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        write_image(str(tmp_path / f"f{i}.png"), f)
    proc = subprocess.run([sys.executable, "-m", "deq_flow_jax.cli", "infer", str(tmp_path / "f0.png"),
                           str(tmp_path / "f1.png"), "--checkpoint", str(bad), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad / "checkpoints" / "5") in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_workdir_with_another_variants_config(tiny, tmp_path):
    variables, cfg = tiny
    wd = make_workdir(tmp_path / "run", variables, cfg, steps=((3, 1.0),),
                      extra_cfg=ModelConfig.variant("B"))
    with pytest.raises(checkpoints.CheckpointError) as e:
        checkpoints.load(wd)
    text = _one_line(e.value)
    assert str(tmp_path / "run" / "checkpoints" / "3") in text and "variant B" in text


def test_kind_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        checkpoints.load(str(tmp_path / "nope"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        checkpoints.load(str(tmp_path / "file"))
    with pytest.raises(FileNotFoundError, match="neither a model directory"):
        checkpoints.load(str(tmp_path))


def test_no_pretrained_model_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("DEQ_FLOW_PRETRAINED_DIR", str(tmp_path))
    for call in (checkpoints.load, checkpoints.describe):
        with pytest.raises(FileNotFoundError, match="no pretrained model is installed") as e:
            call(None)
        _one_line(e.value)


def test_workdir_without_checkpoints_folder(tmp_path):
    (tmp_path / "model_config.json").write_text(json.dumps(ModelConfig.variant("tiny").to_dict()))
    with pytest.raises(ValueError, match="config of a training workdir, but .* no checkpoints/"):
        checkpoints.load(str(tmp_path))


def test_save_refuses_what_it_did_not_write(tiny, tmp_path):
    variables, cfg = tiny
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    (tmp_path / "a_file").write_text("mine too")
    before = tree_hash(tmp_path)
    with pytest.raises(checkpoints.CheckpointError, match="not a model directory") as e:
        checkpoints.save(str(user), variables, cfg, overwrite=True)
    assert str(user) in _one_line(e.value)
    with pytest.raises(checkpoints.CheckpointError, match="not a directory"):
        checkpoints.save(str(tmp_path / "a_file"), variables, cfg, overwrite=True)
    assert tree_hash(tmp_path) == before
    # A model of ours with a file the user added is not replaced either.
    model = tmp_path / "model"
    checkpoints.save(str(model), variables, cfg)
    (model / "README").write_text("my notes")
    before = tree_hash(tmp_path)
    with pytest.raises(checkpoints.CheckpointError, match="'README', which deq-flow did not write"):
        checkpoints.save(str(model), variables, cfg, overwrite=True)
    assert tree_hash(tmp_path) == before


def test_overwrite_replaces_only_our_model_and_leaves_dir_old_alone(tiny, tmp_path):
    variables, cfg = tiny
    out = tmp_path / "model"
    checkpoints.save(str(out), variables, cfg)
    old = tmp_path / "model.old"                  # the user's folder, next to ours
    old.mkdir()
    (old / "keep.txt").write_text("precious")
    with pytest.raises(checkpoints.CheckpointError, match="pass --overwrite"):
        checkpoints.save(str(out), variables, cfg)
    other, _ = tiny_variables(seed=1)
    checkpoints.save(str(out), other, cfg, DEQConfig(**TINY_DEQ), overwrite=True)
    got, _, deq = checkpoints.load(str(out))
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, got), jax.tree.map(np.asarray, other))
    assert deq == DEQConfig(**TINY_DEQ)
    assert (old / "keep.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["model", "model.old"]      # no temp leftovers
    # An empty folder (e.g. made with mkdir) is filled without --overwrite.
    empty = tmp_path / "empty"
    empty.mkdir()
    checkpoints.save(str(empty), variables, cfg)
    assert checkpoints.load(str(empty))[1] == cfg


def test_legacy_v1_orbax_model_dir_still_loads(tiny, tmp_path):
    import orbax.checkpoint as ocp
    variables, cfg = tiny
    path = tmp_path / "v1"
    path.mkdir()
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(str(path / "variables"), jax.tree.map(np.asarray, variables))
        ckptr.wait_until_finished()
    (path / "model_config.json").write_text(json.dumps(
        {"format": "deq-flow-jax/model/v1", "model": cfg.to_dict()}))
    got, got_cfg, deq = checkpoints.load(str(path))
    assert got_cfg == cfg and deq is None
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, got), jax.tree.map(np.asarray, variables))
    # A v1 model of ours may be replaced (with --overwrite) by a v2 one.
    checkpoints.save(str(path), variables, cfg, overwrite=True)
    assert "variables" not in os.listdir(path)


def test_training_init_from_goes_through_the_same_loader(tiny, saved, workdir):
    import ml_collections

    from deq_flow_jax.train.loop import _initial_variables
    variables, cfg = tiny
    for src, shift in ((saved[0], 0), (workdir, 5)):               # model dir; workdir's best
        config = ml_collections.ConfigDict({"init_from": src, "seed": 0})
        got = _initial_variables(config, cfg)
        np.testing.assert_array_equal(got["params"]["fnet"]["conv1"]["kernel"],
                                      np.asarray(variables["params"]["fnet"]["conv1"]["kernel"])
                                      + shift)
    config = ml_collections.ConfigDict({"init_from": saved[0], "seed": 0})
    with pytest.raises(ValueError, match="holds a tiny model"):
        _initial_variables(config, ModelConfig.variant("B"))


def test_late_tensorstore_completion_after_a_failed_read_prints_nothing(monkeypatch):
    """A TensorStore read finishing after orbax's event loop closed (what a corrupt
    checkpoint's restore leaves behind) reports "Event loop is closed" to sys.unraisablehook
    from a background thread; after any orbax read that report is dropped, while other
    unraisable errors still reach the previous hook. Reproduced deterministically with a
    TensorStore promise awaited on a loop that is then closed."""
    import asyncio
    import sys

    import tensorstore as ts
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    def late_completion():
        promise, future = ts.Promise.new()
        loop = asyncio.new_event_loop()

        async def wait():
            return await future
        task = loop.create_task(wait())
        loop.run_until_complete(asyncio.sleep(0.01))   # the task now awaits the future
        loop.close()
        promise.set_result(1)                          # its callback meets the closed loop
        task._log_destroy_pending = False              # no "Task was destroyed" at exit

    late_completion()                                  # control: without the filter it is seen
    assert len(seen) == 1 and "Event loop is closed" in str(seen[0].exc_value)
    with checkpoints.quiet_orbax():
        pass
    late_completion()
    assert len(seen) == 1                              # dropped
    checkpoints.drop_late_tensorstore_callbacks()      # idempotent: installed once
    hook = sys.unraisablehook
    checkpoints.drop_late_tensorstore_callbacks()
    assert sys.unraisablehook is hook

    class Other:
        def __del__(self):
            raise RuntimeError("Event loop is closed")  # same text, not from asyncio
    Other()
    assert len(seen) == 2 and isinstance(seen[1].exc_value, RuntimeError)
