"""`deq-flow train` argument handling and the shipped configs (no training here)."""
import pytest
from training_helpers import REPO

from deq_flow_jax.cli import train as cli
from deq_flow_jax.train.config import check_config, model_config


@pytest.mark.parametrize("stage", ["synthetic", "chairs", "things", "sintel", "kitti", "cpu_pretrain"])
def test_shipped_configs_are_valid(stage):
    import importlib
    c = importlib.import_module(f"deq_flow_jax.configs.{stage}").get_config()
    check_config(c)
    assert c.data.stage == {"cpu_pretrain": "layered"}.get(stage, stage)


def test_stage_values_follow_the_paper():
    from deq_flow_jax.configs import chairs, kitti, sintel, things
    c, t, s, k = chairs.get_config("H"), things.get_config(), sintel.get_config(), kitti.get_config()
    assert (c.batch_size, c.lr, tuple(c.data.crop_size), c.deq.n_losses) == (12, 4e-4, (368, 496), 6)
    assert c.model.variant == "H" and not c.freeze_bn and t.freeze_bn and t.deq.all_grad
    assert (t.batch_size, t.lr, tuple(t.data.crop_size), t.deq.phantom_steps) == (6, 1.25e-4, (400, 720), (3,))
    assert (s.gamma, s.weight_decay, tuple(s.data.crop_size)) == (0.9, 1e-5, (368, 768))
    assert (k.num_steps, k.lr, tuple(k.data.crop_size)) == (50_000, 1e-4, (288, 960))


def test_cli_errors_and_help(capsys):
    assert cli.main(["--help"]) == 0
    assert "--workdir" in capsys.readouterr().out
    cfg = f"{REPO}/deq_flow_jax/configs/synthetic.py"
    assert cli.main(["--config", cfg]) == 2
    assert "--workdir" in capsys.readouterr().err
    assert cli.main(["--config", cfg, "--workdir", "/tmp/x", "--config.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err


def test_config_errors_name_the_key():
    from deq_flow_jax.configs.synthetic import get_config
    c = get_config()
    c.data.crop_size = (60, 96)
    with pytest.raises(ValueError, match="crop_size"):
        check_config(c)
    c = get_config()
    c.model.compute_dtype = "float16"
    with pytest.raises(ValueError, match="compute_dtype"):
        model_config(c)
    for key, value in (("boundary_weight", -1.0), ("boundary_threshold", 0.0), ("boundary_radius", -1),
                       ("loss_margin", -0.5), ("loss_margin", float("nan"))):
        c = get_config()
        c[key] = value
        with pytest.raises(ValueError, match=key):
            check_config(c)
    c = get_config()
    del c["eval_every"]
    with pytest.raises(ValueError, match="eval_every"):
        check_config(c)


def test_bad_rendered_data_settings_are_refused_before_the_workdir(tmp_path, capsys):
    """A bad `config.data.layered` value (a probability, an unknown photograph) is one line naming
    the key, and `deq-flow train` leaves the workdir as it was: nothing written before the check."""
    from deq_flow_jax.configs.cpu_pretrain import get_config
    for key, value, match in (("flat_prob", 1.5, "flat_prob"), ("extra_photos", ("nope",), "extra_photos"),
                              ("no_such_setting", 1, "no_such_setting")):
        c = get_config()
        c.data.layered[key] = value
        with pytest.raises(ValueError, match=f"config.data.layered: .*{match}"):
            check_config(c)
    wd = tmp_path / "wd"
    argv = ["--config", f"{REPO}/deq_flow_jax/configs/cpu_pretrain.py", "--workdir", str(wd),
            "--config.data.layered.extra_photos=('nope',)"]
    assert cli.main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "extra_photos" in err[0] and "nope" in err[0], err
    assert not wd.exists()


def test_a_dataset_that_is_not_prepared_is_refused_before_the_workdir(tmp_path, capsys):
    """Errors that need I/O (here a dataset missing from --config.data.data_dir) are found when
    the loader is built, which is before `deq-flow train` creates the workdir: nothing is left."""
    empty, wd = tmp_path / "data", tmp_path / "wd"
    empty.mkdir()
    argv = ["--config", f"{REPO}/deq_flow_jax/configs/chairs.py", "--workdir", str(wd),
            f"--config.data.data_dir={empty}"]
    assert cli.main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not prepared" in err[0] and str(empty) in err[0], err
    assert not wd.exists() and list(empty.iterdir()) == []


@pytest.mark.parametrize("inside", [False, True])
def test_the_workdir_is_claimed_after_the_loader_unless_the_data_lives_in_it(tmp_path, monkeypatch,
                                                                            inside):
    """The train loader is built before the workdir exists; a data_dir inside the workdir (where
    the synthetic dataset would be built) makes the workdir claimed first, as deq-flow's own."""
    from training_helpers import tiny_config

    from deq_flow_jax.data import pipeline
    from deq_flow_jax.io.outputs import WORKDIR_MARKER
    from deq_flow_jax.train import train_and_evaluate
    wd = tmp_path / "wd"
    seen = []

    def loader_probe(*args, **kwargs):
        seen.append(((wd / WORKDIR_MARKER).is_file(), (wd / "config.json").exists()))
        raise ValueError("probe: stop before any data")
    monkeypatch.setattr(pipeline, "make_train_loader", loader_probe)
    with pytest.raises(ValueError, match="probe"):
        train_and_evaluate(tiny_config(wd / "data" if inside else tmp_path / "data"), str(wd))
    assert seen == [(inside, False)]
    assert wd.exists() == inside and not (wd / "config.json").exists()


def test_extra_validation_sets_parse_and_errors_name_the_key():
    from deq_flow_jax.configs.synthetic import get_config
    from deq_flow_jax.train.config import extra_validations
    c = get_config()
    assert extra_validations(c.data) == []
    c.data.extra_val = "photo_pairs:validation:8, sintel_clean:training, kitti"
    assert extra_validations(c.data) == [("photo_pairs", "validation", 8),
                                         ("sintel_clean", "training", 0), ("kitti", "validation", 0)]
    for bad in ("photo_pairs:validation:x", "photo_pairs:validation:-1", "a:b:1:2", ":validation",
                "kitti,kitti", "synthetic"):          # the last repeats the main val_dataset
        c.data.extra_val = bad
        with pytest.raises(ValueError, match="config.data.extra_val"):
            check_config(c)


def test_loss_options_of_the_config_reach_the_loss(monkeypatch):
    """The training loop builds its loss from config.boundary_* and loss_margin (no compilation
    here)."""
    from deq_flow_jax.configs.synthetic import get_config
    from deq_flow_jax.train import loop
    seen = {}
    monkeypatch.setattr(loop, "make_flow_loss_fn", lambda *a, **kw: seen.update(kw) or "loss")
    monkeypatch.setattr(loop, "make_train_step", lambda loss_fn, *a, **kw: loss_fn)
    c = get_config()
    assert (c.boundary_weight, c.boundary_threshold, c.boundary_radius) == (0.0, 1.0, 2)
    assert c.loss_margin == 0.0
    c.boundary_weight, c.boundary_threshold, c.boundary_radius, c.loss_margin = 4.0, 0.5, 3, 0.25
    assert loop._StepVariants(c, None, None, None, None, None)(1) == "loss"
    assert (seen["boundary_weight"], seen["boundary_threshold"], seen["boundary_radius"]) == (4.0, 0.5, 3)
    assert seen["loss_margin"] == 0.25
