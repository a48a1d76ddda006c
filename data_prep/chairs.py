"""FlyingChairs (Dosovitskiy et al. 2015) with the official train/validation split.

Manual dir: the extracted `FlyingChairs_release` folder (or its parent):
  data/00001_img1.ppm, data/00001_img2.ppm, data/00001_flow.flo, ...
  FlyingChairs_train_val.txt   (one label per pair in file order: 1 = train, 2 = validation;
                                also accepted directly inside the manual dir)
"""
from __future__ import annotations

import os

import numpy as np

from data_prep.common import ManualDirError, ManualFlowBuilder, PairFiles, find_root, require, sorted_glob

SPLIT_FILE = "FlyingChairs_train_val.txt"


def read_split_file(path: str) -> np.ndarray:
    try:
        labels = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (OSError, ValueError) as e:
        raise ManualDirError(f"{path}: cannot read the FlyingChairs split file: {e}") from None
    if not np.isin(labels, (1, 2)).all():
        raise ManualDirError(f"{path}: split labels must be 1 (train) or 2 (validation)")
    return labels


class FlyingChairs(ManualFlowBuilder):
    """FlyingChairs: 22,872 pairs, 512x384; split 'train' (22,232) and 'validation' (640)."""

    name = "flying_chairs"
    DESCRIPTION = __doc__
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def list_splits(self, manual_dir):
        root = find_root(manual_dir, "data", ("FlyingChairs_release",), "FlyingChairs")
        data = os.path.join(root, "data")
        images = require(sorted_glob(data, "*.ppm"), f"{data}/00001_img1.ppm, ...")
        flows = require(sorted_glob(data, "*.flo"), f"{data}/00001_flow.flo, ...")
        if len(images) != 2 * len(flows):
            raise ManualDirError(f"{data}: {len(images)} .ppm images for {len(flows)} .flo flows "
                                 "(expected two images per flow)")
        split_path = next((p for p in (os.path.join(root, SPLIT_FILE), os.path.join(manual_dir, SPLIT_FILE))
                           if os.path.exists(p)), None)
        if split_path is None:
            raise ManualDirError(f"FlyingChairs: expected the split file {SPLIT_FILE} in {root} "
                                 f"(it ships with the dataset)")
        labels = read_split_file(split_path)
        if len(labels) != len(flows):
            raise ManualDirError(f"{split_path}: {len(labels)} labels for {len(flows)} pairs in {data}")
        splits = {"train": [], "validation": []}
        for i, flow in enumerate(flows):
            pid = os.path.basename(flow).split("_")[0]
            pair = PairFiles(images[2 * i], images[2 * i + 1], flow, "dense", "", i, pid)
            splits["train" if labels[i] == 1 else "validation"].append(pair)
        return splits
