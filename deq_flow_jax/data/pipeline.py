"""The grain input pipeline: mixtures, shuffling, augmentation, per-host batching.

    loader = make_train_loader("synthetic", data_dir=..., crop_size=(64, 96),
                               global_batch_size=8, seed=0)
    it = iter(loader)            # grain DatasetIterator
    batch = next(it)             # numpy: image1, image2 (b, H, W, 3) float32 0..255,
                                 # flow (b, H, W, 2) float32, valid (b, H, W) float32
    state = it.get_state()       # ... later: it.set_state(state) resumes exactly

Element i of the (infinite, per-epoch reshuffled) stream is augmented with a generator
seeded by (seed, i), so batches do not depend on the number of workers or threads.
Process p of P takes elements p, p+P, p+2P, ... and batches them by global_batch_size/P.
"""
from __future__ import annotations

import bisect
import dataclasses

import cv2
import grain
import numpy as np

from deq_flow_jax.data.augment import augment, center_crop
from deq_flow_jax.data.mixtures import Component, apply_aug_override, stage_components
from deq_flow_jax.data.sources import FlowSource, generator_kwargs, make_eval_source
from deq_flow_jax.parent_watch import grain_worker_init

BATCH_KEYS = ("image1", "image2", "flow", "valid")


class MixtureSource:
    """Concatenation of `weight` copies of each component's source: item i -> (component, example)."""

    def __init__(self, components: list[Component], sources: list[FlowSource]):
        self.components, self.sources = components, sources
        sizes = [c.weight * len(s) for c, s in zip(components, sources)]
        for c, s in zip(components, sources):
            if len(s) == 0:
                raise ValueError(f"dataset {c.dataset!r} split {c.split!r} is empty")
        self._ends = list(np.cumsum(sizes))

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __getitem__(self, index: int):
        index = int(index)
        k = bisect.bisect_right(self._ends, index)
        start = 0 if k == 0 else int(self._ends[k - 1])
        src = self.sources[k]
        return k, src[(index - start) % len(src)]

    def __repr__(self) -> str:
        parts = [f"{c.weight}*{c.dataset}({len(s)})" for c, s in zip(self.components, self.sources)]
        return f"MixtureSource({' + '.join(parts)} = {len(self)})"


@dataclasses.dataclass(frozen=True)
class TrainTransform:
    """Decoded example -> augmented, cropped float32 training example."""
    components: tuple[Component, ...]
    crop_size: tuple[int, int]

    def __call__(self, item, rng: np.random.Generator) -> dict:
        k, ex = item
        if "flow" not in ex:
            raise ValueError(f"{ex['meta']['dataset']}: training needs ground-truth flow")
        cfg = self.components[k].aug
        img1, img2, flow, valid = ex["image1"], ex["image2"], ex["flow"], ex["valid"]
        if cfg is None:
            img1, img2, flow, valid = center_crop(img1, img2, flow, valid, self.crop_size)
        else:
            img1, img2, flow, valid = augment(rng, img1, img2, flow, valid, cfg)
        finite = np.all(np.abs(flow) < 1000, axis=-1)
        return {"image1": img1.astype(np.float32), "image2": img2.astype(np.float32),
                "flow": flow.astype(np.float32), "valid": ((valid >= 0.5) & finite).astype(np.float32)}


def _train_worker_init(worker_index: int, worker_count: int) -> None:
    """A training loader's worker process: OpenCV single-threaded before it renders anything
    (`make_train_loader`), and the worker ends with its parent (`grain_worker_init`)."""
    cv2.setNumThreads(0)
    grain_worker_init(worker_index, worker_count)


def _batch(examples) -> dict:
    return {k: np.stack([e[k] for e in examples]) for k in BATCH_KEYS}


def _in_process_memory(batch: dict) -> dict:
    """A worker's batch copied out of the shared memory it arrived in (a few MB per batch).

    Without the copy a batch still referenced when the process exits (the last one, held by
    the arrays made from it) is never unlinked: Python's resource tracker then removes it and
    warns about "leaked shared_memory objects" at the end of every run with workers."""
    return {k: np.array(v, copy=True) for k, v in batch.items()}


def make_train_loader(stage, *, data_dir, crop_size, global_batch_size, seed, num_workers=0,
                      process_index=0, process_count=1, aug=None, synthetic=None, layered=None,
                      read_threads=2, prefetch=8, worker_buffer_size=2) -> grain.IterDataset:
    """The training pipeline of a stage (see `deq_flow_jax.data.mixtures`).

    Args:
      stage: 'synthetic', 'synthetic_video', 'layered', 'chairs', 'things', 'sintel',
        'sintel_ct', 'kitti', or a mixture spec ('100*sintel_clean+things_clean', [(w, name), ...]).
      data_dir: TFDS data directory (the synthetic dataset is built there on first use).
      crop_size: (height, width) of the training crops.
      global_batch_size: batch size summed over all processes; must divide by process_count.
      seed: shuffling and augmentation seed.
      num_workers: grain worker processes (0 = in-process, with `read_threads` threads).
      process_index, process_count: this host's share (jax.process_index/count()).
      aug: None (stage defaults), False (no augmentation, centre crops), a dict of
        `AugConfig` overrides, or an `AugConfig`.
      synthetic: kwargs of `ensure_synthetic` (height, width, num_train, ...) for synthetic data.
      layered: `seed` and LayeredConfig overrides (height, width, ...) for the rendered 'layered'
        data (rendered on demand, nothing prepared; its train split is 1,000,000 pairs long).
    Returns:
      A grain IterDataset; `iter()` gives a DatasetIterator with get_state/set_state,
      yielding this process's batches {image1, image2, flow, valid} (see module docstring).
    """
    # OpenCV single-threaded in the training pipeline (its threads and workers share the
    # cores with XLA), in this process and, from their start, in the worker processes. Set
    # once, before any loader thread runs: changing it while another thread is inside an
    # OpenCV parallel loop crashes the process (SIGFPE). Not at import, which would leave
    # OpenCV single-threaded in every process that imports deq_flow_jax.data (the
    # refinement at inference, the OpenCV baselines of benchmarks/pretrained.py).
    cv2.setNumThreads(0)
    if global_batch_size % process_count:
        raise ValueError(f"global_batch_size={global_batch_size} is not divisible by "
                         f"process_count={process_count}")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} not in [0, {process_count})")
    crop_size = (int(crop_size[0]), int(crop_size[1]))
    components = apply_aug_override(stage_components(stage, crop_size), aug)
    sources = []
    for c in components:
        sources.append(make_eval_source(c.dataset, c.split, data_dir=data_dir,
                                        **generator_kwargs(c.dataset, synthetic, layered)))
    mixture = MixtureSource(components, sources)
    ds = grain.MapDataset.source(mixture).shuffle(seed=seed).repeat(None)
    # Augment before sharding, so element i is the same whatever the process count.
    ds = ds.random_map(TrainTransform(tuple(components), crop_size), seed=seed)
    ds = ds[process_index::process_count]
    ds = ds.batch(global_batch_size // process_count, drop_remainder=True, batch_fn=_batch)
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch))
    if num_workers > 0:
        # Workers end with this process even when it is killed with SIGKILL (no cleanup runs).
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers,
                                                         per_worker_buffer_size=worker_buffer_size),
                            worker_init_fn=_train_worker_init)
        it = it.map(_in_process_memory)   # stateless: the iterator state is the workers'
    return it


def iterator_state_for(state, num_workers: int):
    """A saved train-loader position, as the state of a loader with `num_workers` workers.

    The batch sequence does not depend on the worker count, but grain's iterator state does:
    in-process it is {"next_index": b}; with n workers, worker k holds batches k, k+n, ... and
    its `next_index` counts those already taken. Resuming with another worker count (a machine
    with more cores) needs the state rewritten; grain's own `set_state` would accept a foreign
    layout and silently restart some workers at batch 0. Raises ValueError for a state that is
    neither layout or is not at a plain position (exhausted workers, pending states).

    Args:
      state: what `iter(make_train_loader(...)).get_state()` returned.
      num_workers: the new loader's `num_workers` (0 = in-process).

    Returns:
      The equivalent state (the same object when no rewrite is needed).
    """
    def bad(why):
        return ValueError(f"data iterator state cannot be moved to num_workers={num_workers}: {why}")

    if not isinstance(state, dict):
        raise bad(f"unknown state {type(state).__name__}")
    if set(state) == {"next_index"}:
        if num_workers == 0:
            return state
        done = int(state["next_index"])
    elif "iterators_in_use_states" in state:
        inner = state["iterators_in_use_states"]
        saved = len(inner)
        if saved == num_workers:               # the layout grain wrote for this worker count
            return state
        if state.get("future_states") or any(state.get("exhausted", [])):
            raise bad("the saved workers are not at a plain position")
        done = sum(int(x["next_index"]) for x in inner)
        if state != _worker_state(done, saved):
            raise bad("the saved worker positions are inconsistent")
    else:
        raise bad(f"unknown state keys {sorted(state)}")
    return {"next_index": done} if num_workers == 0 else _worker_state(done, num_workers)


def _worker_state(done: int, n: int) -> dict:
    """grain's mp_prefetch state with `done` batches taken by `n` workers (round robin)."""
    return {"next_index_in_cycle": done % n, "next_index_in_datasets": n,
            "iterators_in_use_indices": list(range(n)),
            "iterators_in_use_states": [{"next_index": max(0, (done - k + n - 1) // n)}
                                        for k in range(n)],
            "exhausted": [0] * n, "future_states": {}}


def split_for_devices(batch: dict, num_devices: int) -> dict:
    """Reshapes a process's batch (b, ...) -> (num_devices, b // num_devices, ...) per key.

    For per-device training code (shard_map over a `data` axis reads the leading axis);
    numpy arrays only (lists such as `meta` are left alone).
    """
    out = {}
    for k, v in batch.items():
        if isinstance(v, np.ndarray):
            if v.shape[0] % num_devices:
                raise ValueError(f"batch[{k!r}] has {v.shape[0]} examples, not divisible by "
                                 f"{num_devices} devices")
            v = v.reshape((num_devices, v.shape[0] // num_devices) + v.shape[1:])
        out[k] = v
    return out


def _eval_batch(examples) -> dict:
    out = {k: np.stack([e[k] for e in examples]).astype(np.float32)
           for k in ("image1", "image2", "flow", "valid") if k in examples[0]}
    out["meta"] = [e["meta"] for e in examples]
    return out


def make_eval_loader(name, split="validation", *, data_dir, batch_size, dstype=None,
                     process_index=0, process_count=1, drop_remainder=False,
                     **synthetic_kw) -> grain.IterDataset:
    """Batches of an evaluation split in storage order, no augmentation.

    Only for datasets whose images share one size (synthetic, chairs, things);
    batches hold float32 image1/image2/flow/valid and a list of `meta` dicts.
    """
    src = make_eval_source(name, split, data_dir=data_dir, dstype=dstype, **synthetic_kw)
    ds = grain.MapDataset.source(src)[process_index::process_count]
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, batch_fn=_eval_batch)
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
