"""Shared pieces of the training and benchmark tests: a tiny synthetic config, a subprocess
runner, and a benchmark script loaded as a module."""
import importlib.util
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def benchmark_module(name: str):
    """`benchmarks/<name>.py` imported as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(REPO, "benchmarks", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_config(data_dir, **over):
    """deq_flow_jax/configs/synthetic.py shrunk to seconds per run on 2 CPU cores."""
    from deq_flow_jax.configs.synthetic import get_config
    c = get_config("tiny")
    c.data.data_dir = str(data_dir)
    c.data.synthetic.num_train = 64
    c.data.synthetic.num_val = 8
    c.data.val_max_examples = 8
    c.data.crop_size = (48, 64)
    c.deq.f_max_steps = c.deq.b_max_steps = 6
    c.deq.n_losses = 1
    c.num_val_images = 2
    for k, v in over.items():
        node = c
        *path, last = k.split(".")
        for p in path:
            node = node[p]
        node[last] = v
    return c


def cli_args(data_dir, workdir, **over):
    """`deq-flow train` arguments equivalent to tiny_config(data_dir, **over)."""
    args = ["--config", os.path.join(REPO, "deq_flow_jax/configs/synthetic.py"),
            "--workdir", str(workdir)]
    base = {"data.data_dir": str(data_dir), "data.synthetic.num_train": 64,
            "data.synthetic.num_val": 8, "data.val_max_examples": 8, "data.crop_size": "(48,64)",
            "deq.f_max_steps": 6, "deq.b_max_steps": 6, "deq.n_losses": 1, "num_val_images": 2}
    base.update(over)
    return args + [f"--config.{k}={v}" for k, v in base.items()]


def train_env(n_devices=1, cache_dir=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    if cache_dir:
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return env


def start_train(args, env, log_path):
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, "-m", "deq_flow_jax.cli", "train", *args],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
