"""The installed library stands alone: no module of deq_flow_jax imports `experiments`, and
setup.cfg does not install a top-level `experiments` package."""
import configparser
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import deq_flow_jax
names = [m.name for m in pkgutil.walk_packages(deq_flow_jax.__path__, "deq_flow_jax.")
         if not m.name.endswith(".__main__")]   # __main__ runs the CLI
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names,
                  "experiments": sorted(m for m in sys.modules if m.split(".")[0] == "experiments")}))
"""


def test_no_deq_flow_jax_module_imports_experiments():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL], capture_output=True, text=True,
                         env=env, cwd=REPO, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"deq_flow_jax.configs.chairs", "deq_flow_jax.ablation.runner",
            "deq_flow_jax.cli.ablate", "deq_flow_jax.train.curves"} <= set(res["imported"])
    assert res["experiments"] == []          # cwd is the repo root: `experiments` was importable


def test_setup_cfg_does_not_install_experiments():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    include = cfg["options.packages.find"]["include"].split()
    assert "deq_flow_jax" in include and "deq_flow_jax.*" in include
    assert not [p for p in include if p.split(".")[0] == "experiments"], include


def test_shipped_configs_resolve_inside_the_package():
    import pytest

    import deq_flow_jax
    from deq_flow_jax.cli.demo import DEFAULT_CONFIG
    from deq_flow_jax.configs import config_path

    pkg = os.path.dirname(os.path.abspath(deq_flow_jax.__file__))
    assert DEFAULT_CONFIG == config_path("demo") and DEFAULT_CONFIG.startswith(pkg + os.sep)
    assert os.path.isfile(config_path("chairs"))
    with pytest.raises(ValueError, match="no shipped config 'chair'"):
        config_path("chair")
