"""Shared helpers of the evaluation tests: a fast random tiny model.

`init_model` initialises eagerly, op by op, which takes about a minute on a busy
2-core machine. The tests need *a* random model, not the official initialiser:
`random_variables` takes the variable structure from `jax.eval_shape(init_model)`
(a trace, about a second) and fills it with numpy draws in PyTorch's default
ranges (uniform +-1/sqrt(fan_in)); weight-norm gains equal ||v|| as after
`apply_weight_norm`; batch-norm statistics are (0, 1).
"""
import numpy as np


def random_variables(cfg, seed=0):
    import jax

    from deq_flow_jax.model import init_model

    abstract = jax.eval_shape(lambda: init_model(cfg, jax.random.PRNGKey(0), (16, 16)))
    rng = np.random.default_rng(seed)

    def fill(node, name=""):
        if isinstance(node, dict) or hasattr(node, "items"):
            out = {k: fill(v, k) for k, v in node.items() if k != "weight_g"}
            kernel = out.get("kernel", out.get("weight_v"))
            if kernel is not None and "bias" in out:
                bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
                out["bias"] = rng.uniform(-bound, bound, out["bias"].shape).astype(np.float32)
            if "weight_g" in node:
                v = out["weight_v"]
                out["weight_g"] = np.sqrt((v ** 2).sum(axis=tuple(range(v.ndim - 1)))).astype(np.float32)
            return out
        shape = tuple(node.shape)
        if name in ("kernel", "weight_v"):
            bound = 1.0 / np.sqrt(np.prod(shape[:-1]))
            return rng.uniform(-bound, bound, shape).astype(np.float32)
        if name in ("var", "scale"):
            return np.ones(shape, np.float32)
        return np.zeros(shape, np.float32)            # means, biases (set above), gamma, ...

    return jax.tree_util.tree_map(np.asarray, fill(abstract))
