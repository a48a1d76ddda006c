"""Final diagnostics of a trained ablation run: ||J_f(z*)||_F^2 and spectral radius.

The training log holds the Jacobian penalty only for the run that optimises it; to compare
the three settings on equal terms, every final model (latest checkpoint) is probed on the
same validation pairs with the same random probes:

* `jac_fro`: Hutchinson estimate of ||J_f(z*)||_F^2 / numel(z) (contract 1's
  `jacobian_frobenius_sq`, via `model_forward(..., jac_probes=k)`), averaged over pairs;
* `sradius`: power-iteration estimate of the spectral radius of J_f(z*), mean over pairs;
* `f_rel`, `f_abs`, `f_nstep`: the forward solve's statistics at the training budget.
"""
from __future__ import annotations

import numpy as np


def _probe(variables, im1, im2, key, *, cfg, deq, probes, iters):
    from deq_flow_jax.model import model_forward

    out, _ = model_forward(variables, cfg, deq, im1, im2, train=False, bn_train=False,
                           jac_probes=probes, sradius_iters=iters, key=key, max_steps=deq.f_max_steps)
    st = out.stats
    return out.jac_loss, out.sradius, st.rel_lowest, st.abs_lowest, st.nstep


_probe_jit = None


def final_diagnostics(config, run_dir: str, *, which: str = "latest") -> dict:
    """Probes the run's final model on `config.ablation.probe_examples` validation pairs.

    The forward solve uses the training budget (`deq.f_solver`, `f_max_steps`, `f_tol`,
    `f_stop_mode`); the gradient rule plays no part, so every setting is probed by the same
    compiled program.

    Args:
      config: the setting's training config (contract 5, with an `ablation` section).
      run_dir: the setting's training workdir.
      which: checkpoint to load (`latest` = the end of training).

    Returns:
      dict with `jac_fro`, `sradius`, `f_rel`, `f_abs`, `f_nstep`, `pairs`, `checkpoint`.
    """
    global _probe_jit
    import jax

    from deq_flow_jax import checkpoints
    from deq_flow_jax.model import DEQConfig
    from deq_flow_jax.train.config import validation_source

    if _probe_jit is None:
        _probe_jit = jax.jit(_probe, static_argnames=("cfg", "deq", "probes", "iters"))
    ab = config.ablation
    variables, cfg = checkpoints.load(run_dir, which=which)[:2]
    d = config.deq
    deq = DEQConfig(f_solver=d.f_solver, f_max_steps=int(d.f_max_steps), f_tol=float(d.f_tol),
                    f_stop_mode=d.f_stop_mode, all_grad=bool(d.all_grad))
    data = config.data
    src = validation_source(data)
    n = min(len(src), int(ab.get("probe_examples", 4)))
    if n < 1:
        raise ValueError(f"{run_dir}: no validation pairs to probe ({data.val_dataset}/{data.val_split})")
    exs = [src[i] for i in range(n)]
    h, w = (min(int(e["image1"].shape[k]) for e in exs) // 8 * 8 for k in (0, 1))
    im1 = np.stack([np.asarray(e["image1"], np.float32)[:h, :w] for e in exs])
    im2 = np.stack([np.asarray(e["image2"], np.float32)[:h, :w] for e in exs])
    key = jax.random.PRNGKey(int(config.seed) + 12345)
    jac, srad, rel, abs_, nstep = jax.device_get(_probe_jit(
        variables, im1, im2, key, cfg=cfg, deq=deq, probes=int(ab.get("probe_jac_probes", 4)),
        iters=int(ab.get("probe_sradius_iters", 30))))
    return {
        "jac_fro": float(jac),
        "sradius": float(np.mean(srad)),
        "f_rel": float(np.mean(rel)),
        "f_abs": float(np.mean(abs_)),
        "f_nstep": float(np.mean(nstep)),
        "pairs": n,
        "checkpoint": which,
    }
