"""Child processes that end when their parent dies.

A process killed with SIGKILL (`kill -9`, the kernel's OOM killer) runs no cleanup, so the
processes it started keep running, orphaned: the data loader's worker processes (grain's
`mp_prefetch`) would hold their memory and shared buffers, and a parallel ablation's
setting workers would train on. `terminate_when_orphaned` is called at the start of such a
child: a daemon thread checks the parent's pid every `poll_s` seconds and, once the child
has been re-parented (its parent is gone), sends the child SIGTERM. A child that handles
SIGTERM (`cli.common.sigterm_as_interrupt`) unwinds and stops its own children in turn;
one that does not ends at once.

Polling, not `prctl(PR_SET_PDEATHSIG)`: the death signal follows the parent *thread* that
started the child, and grain starts its workers from short-lived threads.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time


def terminate_when_orphaned(parent_pid: int | None = None, poll_s: float = 1.0) -> threading.Thread:
    """Sends this process SIGTERM once its parent has exited; returns the watching thread.

    parent_pid: the pid the parent had when it started this process (pass it when the
        parent may already be gone by the time this runs); default: the current parent.
    poll_s: seconds between checks.
    """
    expected = os.getppid() if parent_pid is None else int(parent_pid)

    def watch() -> None:
        while os.getppid() == expected:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="terminate-when-orphaned", daemon=True)
    thread.start()
    return thread


def grain_worker_init(worker_index: int, worker_count: int) -> None:
    """`mp_prefetch(..., worker_init_fn=grain_worker_init)`: the data loader's worker
    `worker_index` of `worker_count` ends with the process that started it (the pid that
    `multiprocessing` recorded at spawn time, so a parent killed during the worker's start-up
    is noticed too)."""
    del worker_index, worker_count
    parent = multiprocessing.parent_process()
    terminate_when_orphaned(None if parent is None else parent.pid)
