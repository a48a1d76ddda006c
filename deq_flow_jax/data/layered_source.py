"""The rendered datasets as random-access sources (no prepare step, nothing on disk).

  layered      train: training photographs + procedural textures, `num_train` (virtual,
               default 1,000,000) pairs rendered on demand;
               validation: held-out photographs + procedural textures, `num_val` (64) pairs.
  photo_pairs  validation: held-out photographs under a known global homography,
               `num_photo_pairs` (32) pairs.

Item i of a split is `render(seed, i, cfg, split)` (`render_photo_pair` for photo_pairs),
so a source is a pure function of (name, split, seed, cfg): it pickles small, works in
grain worker processes, and resumes exactly through grain's iterator state. Items have
the keys of `FlowSource` items: image1, image2 (H, W, 3) uint8, flow (H, W, 2) float32,
valid (H, W) float32 (ones), occlusion (H, W) float32, meta.

`sequence_items(index, ...)` gives one rendered video (`layered.render_sequence`) as its
consecutive pairs in the same item format, with meta (scene, frame) for fixed-point reuse.
"""
from __future__ import annotations

import dataclasses

from deq_flow_jax.data.layered import VIDEO_CONFIG, LayeredConfig, render, render_photo_pair, render_sequence

LAYERED = ("layered", "photo_pairs")
_SPLITS = {"layered": ("train", "validation"), "photo_pairs": ("validation",)}


def layered_config(**overrides) -> LayeredConfig:
    """LayeredConfig with `overrides`; an unknown name is one clear ValueError."""
    known = {f.name for f in dataclasses.fields(LayeredConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown layered dataset parameters {unknown}; known: seed, {sorted(known)}")
    return LayeredConfig(**overrides)


class LayeredSource:
    """Random access to the rendered pairs of one split (see the module docstring)."""

    sparse = False

    def __init__(self, name: str, split: str, cfg: LayeredConfig | None = None, seed: int = 0):
        cfg = LayeredConfig() if cfg is None else cfg
        if name not in LAYERED:
            raise ValueError(f"unknown rendered dataset {name!r}; known: {LAYERED}")
        if split not in _SPLITS[name]:
            raise ValueError(f"dataset {name!r} has no split {split!r}; it has {list(_SPLITS[name])}")
        self.name, self.split, self.cfg, self.seed = name, split, cfg, int(seed)
        if name == "photo_pairs":
            self._len = cfg.num_photo_pairs
        else:
            self._len = cfg.num_train if split == "train" else cfg.num_val

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"LayeredSource({self.name!r}, {self.split!r}, len={len(self)}, seed={self.seed})"

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range [0, {len(self)})")
        index %= len(self)
        if self.name == "photo_pairs":
            ex = render_photo_pair(self.seed, index, self.cfg)
        else:
            ex = render(self.seed, index, self.cfg, self.split)
        out = {k: ex[k] for k in ("image1", "image2", "flow", "valid", "occlusion")}
        out["meta"] = self.meta(index)
        out["meta"]["photos"] = list(ex["photos"])
        return out

    def meta(self, index: int) -> dict:
        """The `meta` dict of item `index` (nothing rendered)."""
        index = int(index) % len(self)
        scene = f"{self.split}_{index:07d}"
        return {"scene": scene, "frame": 0, "id": scene, "dataset": self.name, "split": self.split,
                "index": index}

    def sequences(self) -> list[tuple[str, list[int]]]:
        """Every pair is its own one-pair sequence."""
        return [(self.meta(i)["scene"], [i]) for i in range(len(self))]


def make_layered_source(name: str, split: str, *, seed: int = 0, **overrides) -> LayeredSource:
    """The source of `name`/`split` with LayeredConfig `overrides` (height, width, num_val, ...)."""
    return LayeredSource(name, split, layered_config(**overrides), seed)


def sequence_items(index: int, cfg: LayeredConfig = VIDEO_CONFIG, frames: int = 10,
                   split: str = "validation", seed: int = 0) -> list[dict]:
    """Video `index` of `split` (`render_sequence(seed, index, cfg, frames, split)`) as its
    frames - 1 consecutive pairs, in order: item t has image1 = frame t, image2 = frame t + 1
    ((H, W, 3) uint8), flow (H, W, 2) float32, valid and occlusion (H, W) float32, and meta
    {scene, frame: t, id, dataset: 'layered_video', split, index: t, photos}: the keys of
    `LayeredSource` items, so `evaluate_source(..., reuse=...)` chains the pairs of a scene."""
    seq = render_sequence(seed, index, cfg, frames, split)
    scene = f"video_{split}_{int(index):07d}"
    return [{"image1": seq["images"][t], "image2": seq["images"][t + 1], "flow": seq["flows"][t],
             "valid": seq["valid"][t], "occlusion": seq["occlusion"][t],
             "meta": {"scene": scene, "frame": t, "id": f"{scene}_{t:03d}", "dataset": "layered_video",
                      "split": split, "index": t, "photos": list(seq["photos"])}}
            for t in range(len(seq["flows"]))]
