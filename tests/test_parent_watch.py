"""Child processes end when their parent is killed with SIGKILL (no cleanup runs in it)."""
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from deq_flow_jax.ablation import worker


def _gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_gone(pids, timeout_s: float) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not _gone(p)]


def _run_parent(script: str, timeout_s: float = 120.0):
    """Starts `python -c script`; the script prints its children's pids (one line, spaces)
    and then sleeps. Returns (parent process, child pids)."""
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([parent.stdout], [], [], timeout_s)
    line = parent.stdout.readline() if ready else ""
    if not line:
        parent.kill()
        parent.wait()
        pytest.fail(f"parent printed no pids within {timeout_s} s: {parent.stderr.read()[-2000:]}")
    return parent, [int(p) for p in line.split()]


def _kill_and_check(parent, children, timeout_s=10.0):
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        left = _wait_gone(children, timeout_s)
        assert not left, f"children {left} outlived their SIGKILLed parent by {timeout_s} s"
    finally:
        for pid in children:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_child_ends_when_its_parent_is_killed():
    parent, children = _run_parent("""
        import subprocess, sys, time
        watched = subprocess.Popen([sys.executable, "-c",
            "from deq_flow_jax.parent_watch import terminate_when_orphaned as t; import time; "
            "t(poll_s=0.05); time.sleep(60)"])
        print(watched.pid, flush=True)
        time.sleep(60)
    """)
    time.sleep(1.0)  # the child is running, watching
    assert not _gone(children[0])
    _kill_and_check(parent, children, timeout_s=10.0)


def test_watcher_with_a_parent_that_is_already_gone_terminates_at_once():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    child = subprocess.run(
        [sys.executable, "-c", "from deq_flow_jax.parent_watch import terminate_when_orphaned as t; "
         f"import time; t({gone.pid}, poll_s=0.05); time.sleep(30)"], timeout=25)
    assert child.returncode == -signal.SIGTERM


def test_data_loader_workers_end_with_a_killed_training_process(tmp_path):
    """`kill -9` (or the OOM killer) on a training process leaves no loader workers behind."""
    parent, children = _run_parent(f"""
        import multiprocessing, time
        from absl import flags
        flags.FLAGS.mark_as_parsed()  # grain's workers read absl flags
        from deq_flow_jax.data import make_train_loader
        it = iter(make_train_loader("layered", data_dir={str(tmp_path)!r}, crop_size=(64, 96),
                                    global_batch_size=2, seed=3, layered=dict(height=96, width=128),
                                    num_workers=2))
        next(it)
        workers = [p.pid for p in multiprocessing.active_children()
                   if p.name.startswith("grain-process-prefetch")]
        assert len(workers) == 2, multiprocessing.active_children()
        print(*workers, flush=True)
        time.sleep(120)
    """)
    _kill_and_check(parent, children, timeout_s=15.0)


def test_ablation_worker_rejects_a_bad_parent_pid(tmp_path):
    assert worker.main([str(tmp_path / "c.json"), str(tmp_path), "--parent-pid=x1"]) == 2
