"""MPI Sintel (Butler et al. 2012): clean and final passes, training and test.

Manual dir: the Sintel folder (or its parent, e.g. `MPI-Sintel-complete`) with
  training/{clean,final}/<scene>/frame_0001.png ..., training/flow/<scene>/frame_0001.flo ...,
  training/occlusions/<scene>/frame_0001.png (optional), test/{clean,final}/<scene>/...
Records keep the scene and the frame index (0-based: pair i = frames i+1, i+2) for
submissions and sequence order; 1,041 training pairs per pass.
"""
from __future__ import annotations

import os

import tensorflow_datasets as tfds

from data_prep.common import ManualDirError, ManualFlowBuilder, PairFiles, find_root, sorted_glob


class MpiSintel(ManualFlowBuilder):
    """MPI Sintel; configs 'clean' and 'final'; splits 'train' and 'test'."""

    name = "mpi_sintel"
    DESCRIPTION = __doc__
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=p, description=f"{p} pass") for p in ("clean", "final")]

    def list_splits(self, manual_dir):
        dstype = self.builder_config.name
        root = find_root(manual_dir, os.path.join("training", dstype), ("Sintel", "MPI-Sintel-complete"),
                         "MPI Sintel")
        splits = {}
        for split, folder in (("train", "training"), ("test", "test")):
            image_root = os.path.join(root, folder, dstype)
            if not os.path.isdir(image_root):
                if split == "test":
                    continue
                raise ManualDirError(f"MPI Sintel: expected {image_root}")
            pairs = []
            for scene in sorted(os.listdir(image_root)):
                images = sorted_glob(image_root, scene, "*.png")
                flows, occs = [None] * len(images), [None] * len(images)
                if split == "train":
                    flows = sorted_glob(root, folder, "flow", scene, "*.flo")
                    if len(flows) != len(images) - 1:
                        raise ManualDirError(
                            f"MPI Sintel: {os.path.join(root, folder, 'flow', scene)} has {len(flows)} "
                            f".flo files for {len(images)} frames (expected one per consecutive pair)")
                    occs = sorted_glob(root, folder, "occlusions", scene, "*.png")
                    occs = occs if len(occs) == len(flows) else [None] * len(flows)
                for i in range(len(images) - 1):
                    pairs.append(PairFiles(images[i], images[i + 1], flows[i],
                                           "dense" if flows[i] else None, scene, i,
                                           f"{scene}/{os.path.basename(images[i])}", occs[i]))
            splits[split] = pairs
        return splits
