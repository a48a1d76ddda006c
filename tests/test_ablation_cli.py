"""`deq-flow ablate` / `deq-flow demo` argument handling (no training)."""
import os

from deq_flow_jax import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABLATION = os.path.join(ROOT, "deq_flow_jax", "configs", "ablation.py")


def test_ablate_needs_config_and_workdir(capsys):
    assert cli.main(["ablate", "--workdir", "x"]) == 2
    assert "--config and --workdir are required" in capsys.readouterr().err


def test_ablate_rejects_unknown_setting_before_training(tmp_path, capsys):
    rc = cli.main(["ablate", "--config", ABLATION, "--workdir", str(tmp_path / "w"), "--settings", "ift,bptt"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "bptt" in err and "each must be one of ift, ift_jac, correction" in err
    assert not os.path.exists(tmp_path / "w" / "ift")


def test_ablate_rejects_unknown_config_variant(tmp_path, capsys):
    rc = cli.main(["ablate", "--config", ABLATION + ":sintel", "--workdir", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown variant 'sintel'" in err and "'layered'" in err


def test_ablation_config_has_the_paper_budget():
    from deq_flow_jax.configs import ablation

    c = ablation.get_config()
    assert (c.deq.f_solver, c.deq.f_max_steps) == ("anderson", 16)
    assert tuple(c.ablation.settings) == ("ift", "ift_jac", "correction")
    assert c.sradius_every > 0 and c.ablation.jac_weight > 0


def test_layered_ablation_is_the_shipped_recipe_with_the_paper_budget():
    from deq_flow_jax.ablation.settings import setting_config
    from deq_flow_jax.configs import ablation, cpu_pretrain
    from deq_flow_jax.train.config import check_config

    c, recipe = ablation.get_config("layered"), cpu_pretrain.get_config()
    assert (c.deq.f_solver, c.deq.f_max_steps, c.deq.b_max_steps) == ("anderson", 16, 16)
    for key in ("batch_size", "ema_decay", "seed"):
        assert c[key] == recipe[key]
    assert c.model.variant == recipe.model.variant == "S"
    assert c.data.to_dict() == recipe.data.to_dict()
    assert (c.num_steps, c.lr, c.restarts) == (1500, 2e-4, ())
    check_config(c)                        # the recipe's restarts (past 1,500) would not pass
    modes = {name: setting_config(c, name).deq for name in c.ablation.settings}
    assert modes["ift"].grad == "ift" and modes["correction"].n_losses == 2


def test_help_texts(capsys):
    assert cli.main(["ablate", "--help"]) == 0
    assert "deq-flow ablate --config" in capsys.readouterr().out
    assert cli.main(["demo", "--help"]) == 0
    assert "deq-flow demo --workdir" in capsys.readouterr().out


def test_demo_and_ablate_reject_an_unknown_config_key(capsys):
    assert cli.main(["demo", "--workdir", "x", "--config.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert cli.main(["ablate", "--config", "deq_flow_jax/configs/ablation.py", "--workdir", "x",
                     "--config.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
