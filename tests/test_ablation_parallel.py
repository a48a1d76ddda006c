"""A parallel ablation stopped by Ctrl-C or SIGTERM stops its worker processes too."""
import os
import subprocess
import sys

import ml_collections
import pytest

from deq_flow_jax.ablation import runner


class _FirstWorker:
    """Stands for the first worker: waiting on it is where the interrupt lands."""

    pid = 0

    def __init__(self):
        self.returncode = None
        self._interrupted = False

    def wait(self, timeout=None):
        if not self._interrupted:
            self._interrupted = True
            raise KeyboardInterrupt  # the CLI turns SIGTERM into the same kind of exception
        return self.returncode

    def poll(self):
        return self.returncode

    def terminate(self):
        self.returncode = -15

    def kill(self):
        self.returncode = -9


def test_interrupted_parallel_run_stops_its_workers(tmp_path, monkeypatch):
    real_popen = subprocess.Popen
    started = []

    def fake_popen(cmd, **kwargs):
        assert cmd[1:3] == ["-m", "deq_flow_jax.ablation.worker"]
        assert f"--parent-pid={os.getpid()}" in cmd  # workers stop if the runner is SIGKILLed
        if not started:
            started.append(_FirstWorker())
        else:  # a worker that would train for minutes
            started.append(real_popen([sys.executable, "-c", "import time; time.sleep(300)"], **kwargs))
        return started[-1]

    monkeypatch.setattr(runner.subprocess, "Popen", fake_popen)
    configs = {name: ml_collections.ConfigDict(dict(seed=1)) for name in ("ift", "ift_jac", "correction")}
    try:
        with pytest.raises(KeyboardInterrupt):
            runner._run_parallel(configs, str(tmp_path), probe=False)
        assert len(started) == 3
        assert started[0].returncode == -15
        for proc in started[1:]:
            assert proc.poll() is not None, "a worker outlived the interrupted ablation"
    finally:
        for proc in started[1:]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name in configs:
        assert (tmp_path / name / "ablation_setting.json").is_file()


def test_worker_unwinds_on_sigterm(tmp_path, monkeypatch, capsys):
    """SIGTERM to a worker raises inside training, so cleanups (the data loader's processes)
    run, and the worker exits with 143 instead of dying where it stands."""
    import os
    import signal
    import time

    from deq_flow_jax.ablation import worker

    cleaned = []

    def fake_run_setting(config, run_dir, probe=True):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the handler interrupts this
        finally:
            cleaned.append(run_dir)
        raise AssertionError("SIGTERM did not interrupt the setting")

    monkeypatch.setattr(runner, "run_setting", fake_run_setting)
    cfg = tmp_path / "ablation_setting.json"
    cfg.write_text(runner.config_to_json(ml_collections.ConfigDict(dict(seed=1))))
    previous = signal.getsignal(signal.SIGTERM)
    assert worker.main([str(cfg), str(tmp_path)]) == 143
    assert cleaned == [str(tmp_path)]
    assert "terminated (SIGTERM)" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) == previous
