"""Training stages as weighted mixtures of datasets, each with its augmentation.

A mixture is a list of `Component(dataset, weight, aug)`: the dataset's training split
repeated `weight` times (the official `100*sintel_clean + ...` concatenation), so an
epoch of the mixture holds sum(weight * len) examples, shuffled together.

Stages (official `fetch_dataloader`; scales are log2 ranges):
  synthetic  synthetic pairs                              dense  -0.2..0.5, flips
  layered    rendered layered scenes (data/layered.py)    dense  -0.2..0.5, flips (official defaults)
  chairs     FlyingChairs train                           dense  -0.1..1.0, flips
  things     Things clean + final                         dense  -0.4..0.8, flips
  sintel     100 Sintel clean + 100 final + 200 KITTI     dense  -0.2..0.6, flips
             + 5 HD1K + Things clean                      KITTI sparse -0.3..0.5, HD1K sparse -0.5..0.2
  sintel_ct  100 Sintel clean + 100 final + Things clean  (the C+T+K/S variant)
  kitti      KITTI 2015 train                             sparse -0.2..0.4, no flip
A custom mixture is a string like "100*sintel_clean+200*kitti+things_clean" or a list of
(weight, dataset) pairs; each dataset then uses its default augmentation below.
"""
from __future__ import annotations

import dataclasses
import re

from deq_flow_jax.data.augment import AugConfig
from deq_flow_jax.data.sources import canonical_name


@dataclasses.dataclass(frozen=True)
class Component:
    """One dataset of a mixture: its name, repeat count, and augmentation (None = crop only)."""
    dataset: str
    weight: int
    aug: AugConfig | None
    split: str = "train"


def _dense(crop, lo, hi, **kw) -> AugConfig:
    return AugConfig(crop_size=tuple(crop), min_scale=lo, max_scale=hi, do_flip=True, **kw)


def default_aug(dataset: str, crop_size) -> AugConfig:
    """The augmentation a dataset gets in a custom mixture."""
    dataset = canonical_name(dataset)
    if dataset == "kitti":
        return AugConfig.sparse_default(crop_size, -0.3, 0.5, do_flip=True)
    if dataset == "hd1k":
        return AugConfig.sparse_default(crop_size, -0.5, 0.2, do_flip=True)
    if dataset.startswith("synthetic"):
        return _dense(crop_size, -0.2, 0.5, eraser_bounds=(10, 30))
    if dataset in ("layered", "photo_pairs"):
        return _dense(crop_size, -0.2, 0.5)
    lo, hi = {"chairs": (-0.1, 1.0), "things_clean": (-0.4, 0.8), "things_final": (-0.4, 0.8),
              "sintel_clean": (-0.2, 0.6), "sintel_final": (-0.2, 0.6)}[dataset]
    return _dense(crop_size, lo, hi)


def stage_components(stage, crop_size) -> list[Component]:
    """The components of a named stage or a custom mixture spec (see the module docstring)."""
    crop_size = tuple(int(c) for c in crop_size)
    if isinstance(stage, str) and stage in ("synthetic", "synthetic_video", "layered"):
        return [Component(stage, 1, default_aug(stage, crop_size))]
    if stage == "chairs":
        return [Component("chairs", 1, _dense(crop_size, -0.1, 1.0))]
    if stage == "things":
        aug = _dense(crop_size, -0.4, 0.8)
        return [Component("things_clean", 1, aug), Component("things_final", 1, aug)]
    if stage in ("sintel", "sintel_ct"):
        aug = _dense(crop_size, -0.2, 0.6)
        comps = [Component("sintel_clean", 100, aug), Component("sintel_final", 100, aug)]
        if stage == "sintel":
            comps += [Component("kitti", 200, AugConfig.sparse_default(crop_size, -0.3, 0.5, True)),
                      Component("hd1k", 5, AugConfig.sparse_default(crop_size, -0.5, 0.2, True))]
        return comps + [Component("things_clean", 1, aug)]
    if stage == "kitti":
        return [Component("kitti", 1, AugConfig.sparse_default(crop_size, -0.2, 0.4, False))]
    return [Component(canonical_name(name), weight, default_aug(name, crop_size))
            for weight, name in parse_mixture(stage)]


def parse_mixture(spec) -> list[tuple[int, str]]:
    """'100*sintel_clean+things' or [(100, 'sintel_clean'), (1, 'things')] -> [(w, name)]."""
    if isinstance(spec, str):
        items = []
        for term in spec.replace(" ", "").split("+"):
            m = re.fullmatch(r"(?:(\d+)\*)?([A-Za-z0-9_/]+)", term)
            if not m:
                raise ValueError(f"bad mixture term {term!r} in {spec!r}; expected 'N*dataset' "
                                 "or a stage name (synthetic, layered, chairs, things, sintel, kitti)")
            items.append((int(m.group(1) or 1), m.group(2)))
    else:
        items = [(int(w), str(n)) for w, n in spec]
    if not items or any(w <= 0 for w, _ in items):
        raise ValueError(f"a mixture needs at least one dataset with a positive weight: {spec!r}")
    return items


def apply_aug_override(components: list[Component], aug) -> list[Component]:
    """`aug` of make_train_loader: None keeps the defaults; False/'none' disables
    augmentation (centre crops); a dict overrides fields of every component's AugConfig;
    an AugConfig replaces them (its crop_size is kept from the component)."""
    if aug is None:
        return components
    if aug is False or aug == "none":
        return [dataclasses.replace(c, aug=None) for c in components]
    out = []
    for c in components:
        if isinstance(aug, AugConfig):
            new = aug.replace(crop_size=c.aug.crop_size if c.aug else aug.crop_size)
        elif isinstance(aug, dict):
            unknown = set(aug) - {f.name for f in dataclasses.fields(AugConfig)}
            if unknown:
                raise ValueError(f"unknown augmentation parameters: {sorted(unknown)}")
            new = c.aug.replace(**aug)
        else:
            raise TypeError(f"aug must be None, False, a dict or an AugConfig, got {type(aug)}")
        out.append(dataclasses.replace(c, aug=new))
    return out
