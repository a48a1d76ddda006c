"""Child-process entry of a parallel ablation: trains one setting.

    python -m deq_flow_jax.ablation.worker SETTING_CONFIG.json RUN_DIR [--no-probe] [--parent-pid=PID]

`SETTING_CONFIG.json` is written by `runner._run_parallel` (a setting's full training
config). Exit status 0 on success, 143 after SIGTERM (the run resumes from its latest
checkpoint next time); any other exception propagates (non-zero status, traceback in the
run's `stdout.log`). With `--parent-pid` (the runner passes its own), the worker stops as
after SIGTERM once that process has exited, even if it was killed with SIGKILL.
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    parent = [a.split("=", 1)[1] for a in argv if a.startswith("--parent-pid=")]
    args = [a for a in argv if a != "--no-probe" and not a.startswith("--parent-pid=")]
    if len(args) != 2 or not all(p.isdigit() for p in parent):
        print("usage: python -m deq_flow_jax.ablation.worker SETTING_CONFIG.json RUN_DIR [--no-probe] "
              "[--parent-pid=PID]", file=sys.stderr)
        return 2
    if parent:
        from deq_flow_jax.parent_watch import terminate_when_orphaned

        terminate_when_orphaned(int(parent[-1]))
    from absl import flags

    flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
    from deq_flow_jax.ablation.runner import config_from_json, run_setting
    from deq_flow_jax.cli.common import EXIT_SIGTERM, Terminated, sigterm_as_interrupt

    cfg_path, run_dir = args
    with open(cfg_path, encoding="utf-8") as fh:
        config = config_from_json(fh.read())
    try:
        # SIGTERM (from `runner._stop_workers`, or `kill`) unwinds like Ctrl-C, so the data
        # loader's worker processes are shut down instead of being left running, orphaned.
        with sigterm_as_interrupt():
            info = run_setting(config, run_dir, probe="--no-probe" not in argv)
    except Terminated:
        print(f"[worker] {run_dir}: terminated (SIGTERM); rerun the ablation to resume from the "
              "latest checkpoint", flush=True)
        return EXIT_SIGTERM
    print(f"[worker] {info['setting']} done in {info['wall_s']:.1f} s: {info['final']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
