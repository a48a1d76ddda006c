"""Child-process entry of a parallel ablation: trains one setting.

    python -m deq_flow_jax.ablation.worker SETTING_CONFIG.json RUN_DIR [--no-probe]

`SETTING_CONFIG.json` is written by `runner._run_parallel` (a setting's full training
config). Exit status 0 on success; any exception propagates (non-zero status, traceback in
the run's `stdout.log`).
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--no-probe"]
    if len(args) != 2:
        print("usage: python -m deq_flow_jax.ablation.worker SETTING_CONFIG.json RUN_DIR [--no-probe]",
              file=sys.stderr)
        return 2
    from absl import flags

    flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
    from deq_flow_jax.ablation.runner import config_from_json, run_setting

    cfg_path, run_dir = args
    with open(cfg_path, encoding="utf-8") as fh:
        config = config_from_json(fh.read())
    info = run_setting(config, run_dir, probe="--no-probe" not in argv)
    print(f"[worker] {info['setting']} done in {info['wall_s']:.1f} s: {info['final']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
