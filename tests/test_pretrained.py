"""Shipped pretrained models: the publish tool, load_pretrained, the default model, integrity,
and the package data that carries them into a non-editable install."""
import configparser
import fnmatch
import os
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest
from checkpoint_helpers import TINY_DEQ, largest_file, make_workdir, scramble, tiny_variables, tree_hash, truncate

import deq_flow_jax
from deq_flow_jax import checkpoints, pretrained
from deq_flow_jax.model import DEQConfig
from deq_flow_jax.pretrained.publish import main as publish_main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny():
    return tiny_variables()


@pytest.fixture(scope="module")
def workdir(tiny, tmp_path_factory):
    variables, cfg = tiny
    return make_workdir(tmp_path_factory.mktemp("wd") / "run", variables, cfg)


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty pretrained root (DEQ_FLOW_PRETRAINED_DIR) for one test."""
    path = tmp_path / "pretrained"
    path.mkdir()
    monkeypatch.setenv(pretrained.ENV_VAR, str(path))
    return path


def test_publish_from_workdir_and_load_pretrained(workdir, root, tmp_path, capsys):
    notes = tmp_path / "notes.md"
    notes.write_text("Trained on layered photographs; 12 CPU-hours.\n")
    assert publish_main([workdir, "tiny-test", "--card-notes", str(notes)]) == 0
    assert f"wrote {root / 'tiny-test'}" in capsys.readouterr().out
    assert sorted(os.listdir(root / "tiny-test")) == ["MODEL_CARD.md", "SHA256SUMS",
                                                      "model_config.json", "variables.msgpack"]
    # The only model is the default; it holds the best checkpoint (step 5) and its DEQ config.
    variables, cfg = deq_flow_jax.load_pretrained()
    best, best_cfg, _ = checkpoints.load(workdir, "best")
    assert cfg == best_cfg
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, variables),
                                jax.tree.map(np.asarray, best))
    assert checkpoints.describe(None) == (cfg, DEQConfig(**TINY_DEQ))
    assert checkpoints.load(None)[2] == DEQConfig(**TINY_DEQ)
    card = (root / "tiny-test" / "MODEL_CARD.md").read_text()
    assert "step 5" in card and "epe 3" in card and "12 CPU-hours" in card
    assert "24 steps (f_max_steps 12 x eval_factor 2.0)" in card
    # Nothing else was left in the root (written to a temp sibling, then renamed).
    assert os.listdir(root) == ["tiny-test"]


def test_default_model_choice(tiny, root, tmp_path):
    variables, cfg = tiny
    src = checkpoints.save(str(tmp_path / "src"), variables, cfg)
    from deq_flow_jax.pretrained.publish import publish
    publish(src, "a")
    publish(src, "b")
    with pytest.raises(FileNotFoundError, match="several pretrained models"):
        deq_flow_jax.load_pretrained()
    publish(src, "b", overwrite=True, make_default=True)
    assert (root / "DEFAULT").read_text().strip() == "b"
    assert pretrained.default_name() == "b"
    assert deq_flow_jax.load_pretrained("a")[1] == cfg
    with pytest.raises(FileNotFoundError, match="no pretrained model named 'c'.*installed: a, b"):
        deq_flow_jax.load_pretrained("c")
    (root / "DEFAULT").write_text("gone\n")
    with pytest.raises(FileNotFoundError, match="DEFAULT: names 'gone'"):
        deq_flow_jax.load_pretrained()


def test_publish_refine_entry(workdir, root, tmp_path):
    """--refine stores the post-processing the commands apply by default; republishing a
    model directory keeps its entry unless told otherwise; the card says which."""
    assert publish_main([workdir, "r", "--refine", "variational"]) == 0
    assert checkpoints.inference(str(root / "r")) == {"refine": "variational"}
    assert checkpoints.inference(None) == {"refine": "variational"}     # the only model
    assert "post-processing: refinement of the flow, method 'variational'" in (root / "r" / "MODEL_CARD.md").read_text()
    assert publish_main([str(root / "r"), "kept", "--root", str(tmp_path / "other")]) == 0
    assert checkpoints.inference(str(tmp_path / "other" / "kept")) == {"refine": "variational"}
    assert publish_main([str(root / "r"), "off", "--root", str(tmp_path / "other"),
                         "--refine", "none"]) == 0
    assert checkpoints.inference(str(tmp_path / "other" / "off")) == {"refine": "none"}
    assert "post-processing: none" in (tmp_path / "other" / "off" / "MODEL_CARD.md").read_text()
    assert publish_main([workdir, "plain", "--root", str(tmp_path / "other")]) == 0
    assert checkpoints.inference(str(tmp_path / "other" / "plain")) == {}
    assert publish_main([str(root / "r"), "both", "--root", str(tmp_path / "other"),
                         "--start", "both"]) == 0          # --start joins the kept refine entry
    assert checkpoints.inference(str(tmp_path / "other" / "both")) == {"refine": "variational", "start": "both"}
    card = (tmp_path / "other" / "both" / "MODEL_CARD.md").read_text()
    assert "solver start: 'both'" in card and "solver start: zero flow" in (root / "r" / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("damage", [scramble, truncate, os.remove])
def test_corrupt_shipped_file_names_it(tiny, root, tmp_path, damage):
    variables, cfg = tiny
    src = checkpoints.save(str(tmp_path / "src"), variables, cfg)
    assert publish_main([src, "m"]) == 0
    weights = root / "m" / "variables.msgpack"
    damage(str(weights))
    with pytest.raises(checkpoints.CheckpointError) as e:
        deq_flow_jax.load_pretrained()
    assert str(weights) in str(e.value) and "\n" not in str(e.value)


def test_publish_refuses_what_it_did_not_write(tiny, root, tmp_path, capsys):
    variables, cfg = tiny
    src = checkpoints.save(str(tmp_path / "src"), variables, cfg)
    (root / "taken").mkdir()
    (root / "taken" / "mine.txt").write_text("user data")
    (root / "DEFAULT").mkdir()                              # not a DEFAULT file of ours
    before = tree_hash(root)
    for argv in ([src, "taken"], [src, "taken", "--overwrite"], [src, "../escape"],
                 [src, "ok", "--default"], [str(tmp_path / "nope"), "x"],
                 [src, "y", "--card-notes", str(tmp_path / "missing.md")]):
        assert publish_main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("python -m deq_flow_jax.pretrained.publish: error:"), err
        assert "\n" not in err and "Traceback" not in err, err
    assert tree_hash(root) == before                         # checked before any write
    assert publish_main([src, "ok", "--overwrite"]) == 0     # ours: replaced on request


def test_truncated_workdir_is_one_line_without_stray_tracebacks(workdir, tmp_path):
    """Run as a user would: a subprocess, so anything orbax or asyncio prints is seen."""
    import shutil
    bad = shutil.copytree(workdir, tmp_path / "run")
    truncate(largest_file(bad / "checkpoints" / "5" / "state"))
    os.remove(bad / "checkpoints" / "5" / "SHA256SUMS")      # let orbax meet the damage
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "deq_flow_jax.pretrained.publish", str(bad),
                          "m", "--root", str(tmp_path / "root")],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(bad / "checkpoints" / "5") in lines[0] and "corrupt" in lines[0]
    assert not (tmp_path / "root").exists()


def test_package_data_carries_every_published_file(tiny, root, tmp_path):
    """setup.cfg's package_data patterns match every file publish writes, so a wheel holds them."""
    variables, cfg = tiny
    src = checkpoints.save(str(tmp_path / "src"), variables, cfg)
    from deq_flow_jax.pretrained.publish import publish
    publish(src, "m", make_default=True)
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "setup.cfg"))
    patterns = parser["options.package_data"]["deq_flow_jax.pretrained"].split()
    written = [os.path.relpath(os.path.join(d, f), root)
               for d, _, fs in os.walk(root) for f in fs]
    assert len(written) == 5          # DEFAULT + the four files of the model
    for rel in written:
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), (rel, patterns)


SHIPPED = pretrained.names(os.path.dirname(pretrained.__file__))


@pytest.mark.skipif(not SHIPPED, reason="no pretrained model is shipped in deq_flow_jax/pretrained")
def test_shipped_model_estimates_a_translation_of_a_real_photo(monkeypatch):
    """The default shipped model, with its own evaluation settings, recovers a known shift of a
    photograph (scikit-image's astronaut) away from the borders where content enters/leaves."""
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    skdata = pytest.importorskip("skimage.data")
    from deq_flow_jax import estimate_flow
    u, v, h, w, margin = 3, -2, 96, 128, 12
    photo = np.asarray(skdata.astronaut(), np.float32)
    y0, x0 = 180, 200
    image1 = photo[y0:y0 + h, x0:x0 + w]
    image2 = photo[y0 - v:y0 - v + h, x0 - u:x0 - u + w]   # image2[y+v, x+u] == image1[y, x]
    variables, cfg, deq = checkpoints.load(None)
    flow = np.asarray(estimate_flow(variables, cfg, image1, image2, deq=deq).flow[0])
    inner = flow[margin:h - margin, margin:w - margin]
    epe = np.sqrt(((inner - np.array([u, v], np.float32)) ** 2).sum(-1))
    assert np.all(np.isfinite(flow))
    assert np.median(epe) < 1.0, (np.median(epe), inner.reshape(-1, 2).mean(0))
    # the post-processing it ships with (model_config.json "inference"), which the commands
    # apply by default, takes the median error well below a pixel (fused: 0.017 px when written)
    assert checkpoints.inference(None) == {"refine": "fusion+dis", "start": "all"}
    refined = deq_flow_jax.refine_flow(image1, image2, flow)[margin:h - margin, margin:w - margin]
    refined_epe = np.sqrt(((refined - np.array([u, v], np.float32)) ** 2).sum(-1))
    assert np.median(refined_epe) < min(0.1, 0.5 * np.median(epe)), np.median(refined_epe)


@pytest.mark.slow     # ~40-60 s: four compilations of the S model at up to 384x512, two pairs
@pytest.mark.skipif(not SHIPPED, reason="no pretrained model is shipped in deq_flow_jax/pretrained")
def test_shipped_model_follows_a_large_motion_of_a_held_out_photo(monkeypatch):
    """A 96 px shift (a fifth of the 512 px frame) of a photograph held out of training: from
    zero flow the solve gets lost; with the shipped settings (start "all", fused refinement)
    a start that knows the motion (the coarse one, when written) is taken and the flow is right
    (0.55 px mean when written, 25 px zero). A 160 px vertical shift of another (two fifths of
    the 384 px frame) is lost by the zero and the coarse starts alike ("both"); "all" adds the
    start from the frames' dominant translation and keeps it (2.4 px where "both" is lost)."""
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    pytest.importorskip("skimage.data")
    import dataclasses

    from deq_flow_jax.data.photos import translation_pair
    from deq_flow_jax.evaluate.estimator import FlowEstimator
    ex = translation_pair("camera", (96, 0))
    shipped = FlowEstimator.from_checkpoint()             # the commands' settings for it
    settings = shipped.settings
    assert (settings.start, settings.refine, settings.max_steps) == ("all", "fusion+dis", 24)
    visible = ex["occlusion"] < 0.5

    def epe(est):
        return float(np.linalg.norm(est.flow[0] - ex["flow"], axis=-1)[visible].mean())

    est = shipped(ex["image1"], ex["image2"])
    assert est.start[0] in ("coarse", "shift"), est.start
    assert epe(est) < 1.5, epe(est)
    zero = FlowEstimator(shipped.variables, shipped.cfg, dataclasses.replace(settings, start="zero"))(
        ex["image1"], ex["image2"])
    assert epe(zero) > 10 * epe(est), (epe(zero), epe(est))

    ex = translation_pair("coffee", (0, 160))
    visible = ex["occlusion"] < 0.5
    est = shipped(ex["image1"], ex["image2"])
    assert est.start.tolist() == ["shift"]
    assert epe(est) < 4.0, epe(est)                   # 2.4 px on the visible pixels when written
    both = FlowEstimator(shipped.variables, shipped.cfg, dataclasses.replace(settings, start="both"))(
        ex["image1"], ex["image2"])
    assert epe(both) > 10 * epe(est), (epe(both), epe(est))


@pytest.mark.slow     # ~30-40 s: the S model at 384x512 (and its coarse levels), two starts
@pytest.mark.skipif(not SHIPPED, reason="no pretrained model is shipped in deq_flow_jax/pretrained")
def test_shipped_model_follows_a_large_zoom_of_a_held_out_photo(monkeypatch):
    """A held-out photograph (the rocket at dusk) zoomed by 1.2x and panned 60 px
    (`layered.render_warp_pair`, large warp 11): no start of "both" holds it; the shipped "all"
    adds a start from the homography most SIFT matches fit, keeps it, and its flow is far closer
    (6.7 px against 11.6 when written; DIS 43)."""
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    pytest.importorskip("skimage.data")
    import dataclasses

    from deq_flow_jax.data.layered import LARGE_WARPS, render_warp_pair
    from deq_flow_jax.evaluate.estimator import FlowEstimator
    ex = render_warp_pair(0, len(LARGE_WARPS) + 4)
    assert ex["meta"]["id"] == "rocket_zoom_pan"
    shipped = FlowEstimator.from_checkpoint()

    def epe(est):
        return float(np.linalg.norm(est.flow[0] - ex["flow"], axis=-1).mean())

    est = shipped(ex["image1"], ex["image2"])
    assert est.start.tolist() == ["homography"]
    both = FlowEstimator(shipped.variables, shipped.cfg, dataclasses.replace(shipped.settings, start="both"))(
        ex["image1"], ex["image2"])
    assert epe(est) < 8.0 and epe(both) > 1.4 * epe(est), (epe(est), epe(both))


@pytest.mark.slow     # ~100 s: the shipped pipeline on one 500x741 and one 384x512 pair, three times
@pytest.mark.skipif(not SHIPPED, reason="no pretrained model is shipped in deq_flow_jax/pretrained")
def test_shipped_model_scores_real_pairs_in_middleburys_layout(monkeypatch, tmp_path, capsys):
    """How a user scores the shipped model on their copy of a benchmark: scikit-image's real
    Middlebury stereo pair (the motorcycle; unknown disparity stored as 1e10, as Middlebury's
    .flo files do) and a 4 px shift of a held-out photograph, written in Middlebury's flow
    layout, go through `deq-flow prepare middlebury` and `deq-flow eval` without --checkpoint.
    Each pair's EPE over its known pixels is the estimator's own, and the real pair's is below
    DIS-medium's on it (2.52 against 2.63 px when written). The same files listed for `eval
    --pairs` give the same EPEs, and `--baseline dis-medium` DIS's."""
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    pytest.importorskip("skimage.data")
    import json

    from deq_flow_jax import cli
    from deq_flow_jax import io as fio
    from deq_flow_jax.data.photos import motorcycle_pair, translation_pair
    from deq_flow_jax.evaluate.estimator import FlowEstimator
    from deq_flow_jax.evaluate.refine import dis_flow
    pairs = {"Motorcycle": motorcycle_pair(), "Rocket": translation_pair("rocket", (4, 0))}
    manual = tmp_path / "middlebury"
    for scene, p in pairs.items():
        gt = np.where(p["valid"][..., None] > 0, p["flow"], np.float32(1e10))
        fio.write_flo(manual / "other-gt-flow" / scene / "flow10.flo", gt)
        fio.write_image(manual / "other-data" / scene / "frame10.png", p["image1"])
        fio.write_image(manual / "other-data" / scene / "frame11.png", p["image2"])
    data_dir = str(tmp_path / "tfds")
    assert cli.main(["prepare", "middlebury", "--manual-dir", str(manual), "--data-dir", data_dir]) == 0
    out = tmp_path / "mb.json"
    assert cli.main(["eval", "--dataset", "middlebury", "--data-dir", data_dir, "--out", str(out),
                     "--per-frame", "--no-progress"]) == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["checkpoint"] is None and (res["settings"]["refine"], res["settings"]["start"]) == \
        ("fusion+dis", "all")
    frames = {f["scene"]: f["epe_masked"] for f in res["passes"]["middlebury"]["frames"]}
    shipped = FlowEstimator.from_checkpoint()

    def epe(flow, p):
        known = p["valid"] > 0
        return float(np.linalg.norm(flow - p["flow"], axis=-1)[known].mean())

    for scene, p in pairs.items():
        np.testing.assert_allclose(frames[scene], epe(shipped(p["image1"], p["image2"]).flow[0], p),
                                   rtol=1e-3, atol=1e-4)
    moto = pairs["Motorcycle"]
    assert frames["Motorcycle"] < epe(dis_flow(moto["image1"], moto["image2"]), moto), frames
    assert frames["Rocket"] < 0.05, frames
    np.testing.assert_allclose(res["passes"]["middlebury"]["summary"]["epe"],
                               np.mean(list(frames.values())), rtol=1e-6)
    # the same files listed for `eval --pairs`, no preparation: the same EPEs; and DIS medium
    # scored by `--baseline` on them, as its own flow gives
    (manual / "pairs.txt").write_text("".join(
        f"other-data/{s}/frame10.png other-data/{s}/frame11.png other-gt-flow/{s}/flow10.flo\n"
        for s in pairs))
    listed = {}
    for method in ("model", "dis-medium"):
        out = tmp_path / f"{method}.json"
        extra = [] if method == "model" else ["--baseline", method]
        assert cli.main(["eval", "--pairs", str(manual / "pairs.txt"), "--out", str(out), "--per-frame",
                         "--no-progress", *extra]) == 0, capsys.readouterr().err
        res = json.loads(out.read_text())
        assert res["method"] == method
        listed[method] = [f["epe_masked"] for f in res["passes"]["pairs"]["frames"]]
    np.testing.assert_allclose(listed["model"], list(frames.values()), rtol=1e-5)
    np.testing.assert_allclose(listed["dis-medium"][0], epe(dis_flow(moto["image1"], moto["image2"]), moto),
                               rtol=1e-5)
    assert listed["model"][0] < listed["dis-medium"][0], listed


def _opencv_samples():
    """OpenCV's samples/data folder if this machine has it (`data.opencv_samples`), else None."""
    from deq_flow_jax.data import opencv_samples
    try:
        return opencv_samples.find_samples_dir()
    except ValueError:
        return None


@pytest.mark.slow     # ~35 s: the shipped pipeline on a 427x370 and a 400x320 pair
@pytest.mark.skipif(not SHIPPED, reason="no pretrained model is shipped in deq_flow_jax/pretrained")
@pytest.mark.skipif(_opencv_samples() is None, reason="no copy of OpenCV's samples/data (opencv-doc)")
def test_shipped_model_beats_dis_on_opencvs_real_pairs(monkeypatch):
    """Real photographs with known motion that are not in this repository: Middlebury's Aloe
    stereo pair at third size (disparities 14-70 px) and Oxford's Graffiti 1 -> 3 at half size
    (a wall seen from two viewpoints, motion up to 146 px). The shipped pipeline's EPE is below
    DIS-medium's by far on both (2.69 against 4.16 and 4.72 against 50.6 px when written)."""
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    from deq_flow_jax.data.opencv_samples import aloe_pair, graffiti_pair
    from deq_flow_jax.evaluate.estimator import FlowEstimator
    from deq_flow_jax.evaluate.refine import dis_flow
    shipped = FlowEstimator.from_checkpoint()
    folder = _opencv_samples()
    for p, bound in ((aloe_pair(folder, 1 / 3), 3.2), (graffiti_pair(folder, 0.5), 6.0)):
        known = p["valid"] > 0

        def epe(flow):
            return float(np.linalg.norm(flow - p["flow"], axis=-1)[known].mean())

        mine, dis = epe(shipped(p["image1"], p["image2"]).flow[0]), epe(dis_flow(p["image1"], p["image2"]))
        assert mine < bound and mine < 0.7 * dis, (p["meta"]["id"], mine, dis)
