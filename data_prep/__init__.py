"""TFDS builders (manual download) of the six optical-flow benchmarks.

    from data_prep import prepare
    prepare("sintel", manual_dir="~/data/Sintel", data_dir="~/tensorflow_datasets")

Each dataset is then read with `deq_flow_jax.data.make_eval_source(...)` or used in
`make_train_loader(...)`. The synthetic dataset lives in `deq_flow_jax.data.synthetic_tfds`.
"""
from __future__ import annotations

import os

from data_prep.chairs import FlyingChairs
from data_prep.common import ManualDirError, prepare_builder
from data_prep.hd1k import Hd1k
from data_prep.kitti import KittiFlow2015
from data_prep.middlebury import MiddleburyFlow
from data_prep.sintel import MpiSintel
from data_prep.things import FlyingThings3D

# dataset name of `deq-flow prepare` -> (builder class, configs to build)
BUILDERS = {
    "chairs": (FlyingChairs, (None,)),
    "things": (FlyingThings3D, ("clean", "final")),
    "sintel": (MpiSintel, ("clean", "final")),
    "kitti": (KittiFlow2015, (None,)),
    "hd1k": (Hd1k, (None,)),
    "middlebury": (MiddleburyFlow, (None,)),
}


def prepare(dataset: str, manual_dir, data_dir, configs=None) -> list:
    """Prepares every config of `dataset` from `manual_dir` into `data_dir`; returns builders."""
    if dataset not in BUILDERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(BUILDERS)} or 'synthetic'")
    cls, default_configs = BUILDERS[dataset]
    manual_dir = os.path.expanduser(os.fspath(manual_dir))
    data_dir = os.path.expanduser(os.fspath(data_dir))
    return [prepare_builder(cls, manual_dir, data_dir, c) for c in (configs or default_configs)]


__all__ = ["BUILDERS", "prepare", "ManualDirError", "FlyingChairs", "FlyingThings3D", "MpiSintel",
           "KittiFlow2015", "Hd1k", "MiddleburyFlow"]
