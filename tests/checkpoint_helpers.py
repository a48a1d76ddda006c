"""Small builders shared by the checkpoint tests: a tiny model, a tiny training workdir, tree hashes."""
import hashlib
import os

import jax
import numpy as np

TINY_DEQ = {"f_max_steps": 12, "eval_factor": 2.0}


def tiny_variables(seed=0):
    from deq_flow_jax.model import ModelConfig, init_model
    cfg = ModelConfig.variant("tiny")
    return init_model(cfg, jax.random.PRNGKey(seed), (16, 16)), cfg


def make_workdir(workdir, variables, cfg, deq=None, *, steps=((5, 3.0), (7, None)),
                 extra_cfg=None):
    """A training workdir with checkpoints at `steps` ((step, val epe or None), ...); the
    parameters of step s are `variables` + s (so best and latest differ)."""
    import optax

    from deq_flow_jax.model import DEQConfig
    from deq_flow_jax.train import checkpoint as ck
    from deq_flow_jax.train.state import create_train_state
    deq = deq or DEQConfig(**TINY_DEQ)
    mgr = ck.make_manager(str(workdir))
    for step, epe in steps:
        shifted = {"params": jax.tree.map(lambda x, s=step: x + s, variables["params"]),
                   "batch_stats": variables["batch_stats"]}
        state = create_train_state(shifted, optax.sgd(1.0), 0)
        extra = {"model_config": (extra_cfg or cfg).to_dict(), "deq_config": deq.to_dict()}
        ck.save(mgr, step, state, {"pos": step}, extra,
                metrics=None if epe is None else {"epe": epe})
    mgr.close()
    return str(workdir)


def tree_hash(root) -> dict:
    """{relative path: sha256 (files) or 'dir'} of everything under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def scramble(path, seed=0, n=64):
    """Overwrites n bytes in the middle of a file with random values (same length)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    rng = np.random.default_rng(seed)
    for i in rng.integers(len(data) // 4, 3 * len(data) // 4, n):
        data[i] = (data[i] + int(rng.integers(1, 256))) % 256
    with open(path, "wb") as f:
        f.write(bytes(data))


def truncate(path, keep=0.5):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * keep)])


def largest_file(root):
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    return max(files, key=os.path.getsize)


def assert_bad_inference_entry_refused(tmp_path, variables, cfg, model_dir, key, bad_value):
    """A bad "inference" entry {key: bad_value} is refused by `checkpoints.save` (nothing written)
    and, written into `model_dir`'s model_config.json by hand, by `checkpoints.load` in one
    line naming that file and `inference.KEY`."""
    import json

    import pytest

    from deq_flow_jax import checkpoints, model_io
    with pytest.raises(ValueError, match=f"inference.{key} must be one of"):
        checkpoints.save(str(tmp_path / "bad"), variables, cfg, inference={key: bad_value})
    assert not os.path.exists(tmp_path / "bad")
    path = os.path.join(model_dir, model_io.CONFIG_NAME)
    with open(path) as f:
        data = json.load(f)
    data["inference"] = {key: bad_value}
    with open(path, "w") as f:
        json.dump(data, f)
    with pytest.raises(checkpoints.CheckpointError, match=rf"model_config.json: inference.{key}"):
        checkpoints.load(model_dir)
