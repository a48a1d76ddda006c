"""Test-suite set-up. Runs before JAX initialises its backends.

* Two fake CPU devices, so data-parallel code paths are exercised on any machine.
* absl flags marked parsed (grain worker processes read them).
* `tfds_temp_folders`: the `mkdtemp("tfds")` folders a test left behind.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()


import pytest  # noqa: E402


@pytest.fixture
def tfds_temp_folders(monkeypatch):
    """A callable listing the folders made with `tempfile.mkdtemp(..."tfds")` during the test
    that still exist: TFDS's metadata lookup for an unprepared dataset leaves one behind per
    builder unless the builder's DatasetInfo skips it (`data.records.LocalDatasetInfo`)."""
    import tempfile
    made, real = [], tempfile.mkdtemp

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]
    monkeypatch.setattr(tempfile, "mkdtemp", spy)
    return lambda: [p for p in made if p.endswith("tfds") and os.path.isdir(p)]
