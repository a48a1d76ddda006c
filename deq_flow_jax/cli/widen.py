"""`deq-flow widen`: grow a training run's GRU / flow head without changing its flow.

    deq-flow widen runs/cpu_pretrain runs/cpu_pretrain-h128 --hidden-dim 128
    deq-flow train --config deq_flow_jax/configs/cpu_pretrain.py \\
        --config.model.hidden_dim=128 --workdir runs/cpu_pretrain-h128

Reads the latest checkpoint of SRC (a `deq-flow train` workdir; only read) and writes DST (must
not exist) with the same step, data position and schedule, and a model whose GRU hidden state
(`--hidden-dim`) and/or flow-head hidden layer (`--flow-head-dim`) is wider: the new channels get
fresh random weights and the old ones never read them (`--method fresh`), or they copy old
channels, which share their outgoing weights with them (`--method split`); either way the
widened model's fixed point and flow equal the old model's (docs/model.md, "Widening a trained
model"). Resume DST with the same config plus the new widths as `--config.model.*` overrides.
"""
from __future__ import annotations

from deq_flow_jax.cli.common import ArgumentParser, at_least, non_negative, run_command


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow widen", __doc__)
    p.add_argument("src", help="training workdir to widen (its latest checkpoint; only read)")
    p.add_argument("dst", help="new training workdir (must not exist)")
    p.add_argument("--hidden-dim", type=at_least(1), default=None,
                   help="new GRU hidden channels (at least the current ones)")
    p.add_argument("--flow-head-dim", type=at_least(1), default=None,
                   help="new flow-head hidden channels (at least the current ones)")
    p.add_argument("--method", choices=("fresh", "split"), default="fresh",
                   help="fresh: new random channels the old ones never read (default); split: "
                        "new channels copy old ones and share their outgoing weights (Net2Net)")
    p.add_argument("--noise", type=non_negative, default=0.0,
                   help="split only: Gaussian noise on the copies' incoming weights, relative to "
                        "each copied column's standard deviation (Net2Net's symmetry breaker; "
                        "changes the flow a little); default 0")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the new channels' weights (fresh) or of the split (split)")
    return p


def main(argv: list[str]) -> int:
    return run_command("widen", build_parser(), argv, _run)


def _run(a) -> int:
    from deq_flow_jax.train.widen import widen_workdir
    step, cfg = widen_workdir(a.src, a.dst, a.hidden_dim, a.flow_head_dim, a.seed, a.method,
                              a.noise)
    print(f"step {step}: hidden_dim {cfg.hidden_dim}, flow_head_dim {cfg.flow_head_dim}")
    print(f"wrote {a.dst}; continue with the same config and "
          f"--config.model.hidden_dim={cfg.hidden_dim} --config.model.flow_head_dim={cfg.flow_head_dim}")
    return 0
