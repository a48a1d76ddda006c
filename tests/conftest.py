"""Test-suite set-up. Runs before JAX initialises its backends.

* Two fake CPU devices, so data-parallel code paths are exercised on any machine.
* absl flags marked parsed (grain worker processes read them).
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()
