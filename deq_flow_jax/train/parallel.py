"""Data-parallel plumbing: the `data` mesh, sharding batches, replicating state, multi-host init.

The train step is written for one device's shard and mapped with `jax.shard_map` over the
mesh axis `DATA_AXIS` (see `step.py`). The same code runs on one CPU, several local devices,
or several processes joined by `jax.distributed`.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str | None, num_processes: int | None,
                           process_id: int | None) -> None:
    """Joins a multi-process run (`jax.distributed.initialize`); a no-op for one process.

    On CPU the cross-process collectives use gloo. Must run before any other JAX call.
    """
    if not coordinator_address and (num_processes in (None, 1)):
        return
    if not coordinator_address or num_processes is None or process_id is None:
        raise ValueError("multi-process training needs all of --coordinator_address, "
                         f"--num_processes and --process_id; got {coordinator_address!r}, "
                         f"{num_processes!r}, {process_id!r}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process_id must be in [0, {num_processes}), got {process_id}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all devices of all processes) named `data`."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """Per-device batch size; raises if the global batch does not split evenly."""
    n = mesh.devices.size
    if global_batch_size % n:
        raise ValueError(f"config.batch_size={global_batch_size} must be a multiple of the "
                         f"number of devices ({n})")
    return global_batch_size // n


def shard_batch(local_batch: dict, mesh: Mesh) -> dict:
    """Global arrays sharded over `data` from this process's share of the batch (numpy)."""
    sharding = NamedSharding(mesh, P(DATA_AXIS))
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Puts identical host values on every device of the mesh (works across processes)."""
    sharding = NamedSharding(mesh, P())

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree.map(put, tree)


def to_host(tree: Any) -> Any:
    """Numpy copy of a replicated (or fully addressable) pytree."""
    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            x = x.addressable_data(0)
        return np.asarray(x)
    return jax.tree.map(get, tree)


def allgather_bytes(blob: bytes) -> list[bytes]:
    """Every process's `blob`, in process order (a single-process run returns [blob])."""
    if jax.process_count() == 1:
        return [blob]
    from jax.experimental import multihost_utils
    n = int(np.max(multihost_utils.process_allgather(np.asarray([len(blob)], np.int32))))
    buf = np.zeros((n,), np.uint8)
    buf[:len(blob)] = np.frombuffer(blob, np.uint8)
    lens = np.asarray(multihost_utils.process_allgather(np.asarray([len(blob)], np.int32))).ravel()
    data = np.asarray(multihost_utils.process_allgather(buf)).reshape(len(lens), n)
    return [bytes(data[i, :lens[i]]) for i in range(len(lens))]
