"""Random-access flow sources over prepared TFDS datasets (no TensorFlow needed).

`make_eval_source(name, split, data_dir=...)` opens a prepared dataset and returns a
`FlowSource`: `len(src)`, `src[i]` ->
  {"image1": (H, W, 3) uint8, "image2": (H, W, 3) uint8,
   "flow": (H, W, 2) float32 (absent on splits without ground truth),
   "valid": (H, W) float32 {0, 1} (absent likewise),
   "occlusion": (H, W) float32 (synthetic only),
   "meta": {"scene": str, "frame": int, "id": str, "dataset": str, "split": str, "index": int}}
Records are in (scene, frame) order, so `src.sequences()` gives whole sequences in order
(Sintel scenes, synthetic videos) for fixed-point reuse across frames.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from deq_flow_jax.data.synthetic_tfds import ensure_synthetic


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a named dataset lives: TFDS name, config, whether its flow is sparse."""
    tfds_name: str
    config: str | None
    sparse: bool
    prepare_hint: str


DATASETS = {
    "chairs": DatasetSpec("flying_chairs", None, False, "chairs"),
    "things_clean": DatasetSpec("flying_things3d", "clean", False, "things"),
    "things_final": DatasetSpec("flying_things3d", "final", False, "things"),
    "sintel_clean": DatasetSpec("mpi_sintel", "clean", False, "sintel"),
    "sintel_final": DatasetSpec("mpi_sintel", "final", False, "sintel"),
    "kitti": DatasetSpec("kitti_flow2015", None, True, "kitti"),
    "hd1k": DatasetSpec("hd1k", None, True, "hd1k"),
    "middlebury": DatasetSpec("middlebury_flow", None, False, "middlebury"),
}
ALIASES = {"things": "things_clean", "sintel": "sintel_clean", "kitti2015": "kitti",
           "flying_chairs": "chairs", "synthetic_pairs": "synthetic"}
SPLIT_ALIASES = {"training": "train", "val": "validation", "valid": "validation",
                 "testing": "test", "eval": "validation"}
SYNTHETIC = ("synthetic", "synthetic_video")
RENDERED = ("layered", "photo_pairs")   # rendered on the fly (deq_flow_jax.data.layered_source)


def generator_kwargs(name: str, synthetic: dict | None = None, layered: dict | None = None) -> dict:
    """The `make_eval_source` keyword arguments of dataset `name`: `synthetic` (the arguments
    of `ensure_synthetic`) for the synthetic sets, `layered` (seed and LayeredConfig
    overrides) for the rendered ones, nothing for prepared datasets."""
    if name.startswith("synthetic"):
        return dict(synthetic or {})
    return dict(layered or {}) if name in RENDERED else {}


def canonical_name(name: str, dstype: str | None = None) -> str:
    """Resolves aliases: 'sintel' + dstype='final' -> 'sintel_final', 'sintel/final' too."""
    name = name.replace("/", "_").replace("-", "_").lower()
    if dstype is not None and name in ("sintel", "things"):
        name = f"{name}_{dstype}"
    name = ALIASES.get(name, name)
    if name not in DATASETS and name not in SYNTHETIC and name not in RENDERED:
        known = ", ".join(sorted(list(DATASETS) + list(SYNTHETIC) + list(RENDERED)))
        raise ValueError(f"unknown dataset {name!r}; known: {known}")
    return name


def _latest_version_dir(data_dir, spec: DatasetSpec) -> str:
    base = os.path.join(os.fspath(data_dir), spec.tfds_name, *( [spec.config] if spec.config else []))
    versions = []
    if os.path.isdir(base):
        for v in os.listdir(base):
            parts = v.split(".")
            if len(parts) == 3 and all(p.isdigit() for p in parts) and \
                    os.path.exists(os.path.join(base, v, "dataset_info.json")):
                versions.append(tuple(int(p) for p in parts))
    if not versions:
        raise FileNotFoundError(
            f"dataset {spec.tfds_name}{'/' + spec.config if spec.config else ''} is not prepared "
            f"under {base}; run `deq-flow prepare {spec.prepare_hint} --manual-dir PATH "
            f"--data-dir {os.fspath(data_dir)}`")
    return os.path.join(base, ".".join(map(str, max(versions))))


def open_builder(name: str, data_dir, **synthetic_kw) -> tuple[tfds.core.DatasetBuilder, bool]:
    """Opens a prepared dataset (building the synthetic one if needed) -> (builder, sparse)."""
    name = canonical_name(name)
    if name in SYNTHETIC:
        variant = "video" if name == "synthetic_video" else "pairs"
        return ensure_synthetic(data_dir, variant=variant, **synthetic_kw), False
    if synthetic_kw:
        raise TypeError(f"unexpected arguments for dataset {name!r}: {sorted(synthetic_kw)}")
    spec = DATASETS[name]
    return tfds.builder_from_directory(_latest_version_dir(data_dir, spec)), spec.sparse


def canonical_split(split: str, builder: tfds.core.DatasetBuilder, name: str) -> str:
    split = SPLIT_ALIASES.get(split, split)
    if split not in builder.info.splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; it has "
                         f"{sorted(builder.info.splits.keys())}")
    return split


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class FlowSource:
    """Random access to decoded flow pairs of one split (see the module docstring)."""

    def __init__(self, builder: tfds.core.DatasetBuilder, name: str, split: str, sparse: bool):
        self.name, self.split, self.sparse = name, split, sparse
        self._builder_dir = os.fspath(builder.data_dir)
        self._source = builder.as_data_source(split=split)
        # Same records, tensors left encoded: cheap access to the metadata.
        skip = {k: tfds.decode.SkipDecoding() for k in ("image1", "image2", "flow", "valid", "occlusion")}
        self._meta_source = builder.as_data_source(split=split, decoders=skip)

    def __len__(self) -> int:
        return len(self._source)

    def __repr__(self) -> str:
        return f"FlowSource({self.name!r}, {self.split!r}, len={len(self)})"

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range [0, {len(self)})")
        rec = self._source[index % len(self)]
        out = {"image1": rec["image1"], "image2": rec["image2"]}
        if rec["has_flow"]:
            out["flow"] = np.asarray(rec["flow"], np.float32)
            out["valid"] = np.asarray(rec["valid"], np.float32)
        if rec["has_occlusion"]:
            out["occlusion"] = np.asarray(rec["occlusion"], np.float32)
        out["meta"] = self._meta(rec, index % len(self))
        return out

    def _meta(self, rec, index: int) -> dict:
        return {"scene": _text(rec["scene"]), "frame": int(rec["frame"]), "id": _text(rec["id"]),
                "dataset": self.name, "split": self.split, "index": index}

    def meta(self, index: int) -> dict:
        """The `meta` dict of record `index`, without decoding images or flow."""
        index = int(index) % len(self)
        return self._meta(self._meta_source[index], index)

    def sequences(self) -> list[tuple[str, list[int]]]:
        """[(scene, [record indices in frame order]), ...] in storage order.

        Reads every record's metadata once (~1 ms per record, nothing decoded).
        """
        groups: dict[str, list[tuple[int, int]]] = {}
        for i in range(len(self)):
            meta = self.meta(i)
            groups.setdefault(meta["scene"], []).append((meta["frame"], i))
        return [(scene, [i for _, i in sorted(items)]) for scene, items in groups.items()]


def make_eval_source(name: str, split: str = "validation", *, data_dir, dstype: str | None = None,
                     **synthetic_kw) -> FlowSource:
    """Opens one split of a prepared dataset for evaluation (no augmentation).

    Args:
      name: 'synthetic', 'synthetic_video', 'chairs', 'things_clean', 'things_final',
        'sintel_clean', 'sintel_final' (or 'sintel' with `dstype`), 'kitti', 'hd1k', 'middlebury', or the
        rendered 'layered' (train, validation) and 'photo_pairs' (validation), which need
        no preparation (`data_dir` is not read; a `LayeredSource` is returned).
      split: 'train', 'validation' or 'test' (aliases 'training', 'val', 'testing').
      data_dir: the TFDS data directory.
      dstype: 'clean' or 'final' for Sintel / Things.
      **synthetic_kw: for the synthetic datasets, the arguments of `ensure_synthetic`
        (height, width, num_train, num_val, num_frames, seed); for the rendered ones,
        `seed` and LayeredConfig fields (height, width, num_val, ...).
    """
    name = canonical_name(name, dstype)
    if name in RENDERED:
        from deq_flow_jax.data.layered_source import make_layered_source
        return make_layered_source(name, SPLIT_ALIASES.get(split, split), **synthetic_kw)
    builder, sparse = open_builder(name, data_dir, **synthetic_kw)
    return FlowSource(builder, name, canonical_split(split, builder, name), sparse)
