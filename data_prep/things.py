"""FlyingThings3D (Mayer et al. 2016), the subset and directions of the official code.

Manual dir: the FlyingThings3D folder (or its parent) with
  frames_cleanpass/{TRAIN,TEST}/{A,B,C}/<seq>/left/0006.png ...
  frames_finalpass/...       (same layout)
  optical_flow/{TRAIN,TEST}/{A,B,C}/<seq>/{into_future,into_past}/left/OpticalFlowInto*_0006_L.pfm
Configs 'clean' and 'final'. Left camera only; both directions: into_future gives
(image i, image i+1, flow i), into_past gives (image i+1, image i, flow i+1).
Splits: 'train' (TRAIN) and 'test' (TEST).
"""
from __future__ import annotations

import os

import tensorflow_datasets as tfds

from data_prep.common import ManualDirError, ManualFlowBuilder, PairFiles, find_root, sorted_glob

PASSES = {"clean": "frames_cleanpass", "final": "frames_finalpass"}


class FlyingThings3D(ManualFlowBuilder):
    """FlyingThings3D, left camera, both flow directions."""

    name = "flying_things3d"
    DESCRIPTION = __doc__
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=p, description=f"{p} pass") for p in PASSES]

    def list_splits(self, manual_dir):
        dstype = PASSES[self.builder_config.name]
        root = find_root(manual_dir, dstype, ("FlyingThings3D",), "FlyingThings3D")
        if not os.path.isdir(os.path.join(root, "optical_flow")):
            raise ManualDirError(f"FlyingThings3D: expected {os.path.join(root, 'optical_flow')}")
        splits = {}
        for split, prefix in (("train", "TRAIN"), ("test", "TEST")):
            seqs = sorted_glob(root, dstype, prefix, "*", "*")
            pairs = []
            for direction in ("into_future", "into_past"):
                for seq_dir in seqs:
                    rel = os.path.relpath(seq_dir, os.path.join(root, dstype))
                    images = sorted_glob(seq_dir, "left", "*.png")
                    fdir = os.path.join(root, "optical_flow", rel, direction, "left")
                    flows = sorted_glob(fdir, "*.pfm")
                    if not flows:
                        raise ManualDirError(f"FlyingThings3D: no flow files in {fdir} for images in {seq_dir}")
                    if len(flows) != len(images):
                        raise ManualDirError(f"{fdir}: {len(flows)} flows for {len(images)} images in {seq_dir}")
                    scene = f"{rel}/{direction}"
                    for i in range(len(flows) - 1):
                        if direction == "into_future":
                            pairs.append(PairFiles(images[i], images[i + 1], flows[i], "dense", scene, i,
                                                   f"{scene}/{os.path.basename(images[i])}"))
                        else:
                            pairs.append(PairFiles(images[i + 1], images[i], flows[i + 1], "dense", scene, i,
                                                   f"{scene}/{os.path.basename(images[i + 1])}"))
            splits[split] = pairs
        if not splits["train"]:
            raise ManualDirError(f"FlyingThings3D: no sequences in {os.path.join(root, dstype, 'TRAIN')}/*/*")
        return splits
