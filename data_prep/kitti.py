"""KITTI 2015 optical flow (Menze & Geiger 2015): sparse ground truth.

Manual dir: the KITTI folder (or its parent, e.g. `KITTI`, `data_scene_flow`) with
  training/image_2/000000_10.png, 000000_11.png, ..., training/flow_occ/000000_10.png ...
  testing/image_2/...   (optional)
Splits 'train' (200 pairs, flow + valid from flow_occ) and 'test' (no flow).
`id` is the file name of frame 1 (e.g. '000000_10.png'), as submissions need.
"""
from __future__ import annotations

import os

from data_prep.common import ManualDirError, ManualFlowBuilder, PairFiles, find_root, sorted_glob


class KittiFlow2015(ManualFlowBuilder):
    """KITTI 2015 flow; 'train' with sparse valid masks, 'test' without ground truth."""

    name = "kitti_flow2015"
    DESCRIPTION = __doc__
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def list_splits(self, manual_dir):
        root = find_root(manual_dir, os.path.join("training", "image_2"), ("KITTI", "data_scene_flow"),
                         "KITTI 2015")
        splits = {}
        for split, folder in (("train", "training"), ("test", "testing")):
            img_dir = os.path.join(root, folder, "image_2")
            if not os.path.isdir(img_dir):
                continue
            images1, images2 = sorted_glob(img_dir, "*_10.png"), sorted_glob(img_dir, "*_11.png")
            if len(images1) != len(images2) or not images1:
                raise ManualDirError(f"KITTI 2015: {img_dir} has {len(images1)} *_10.png and "
                                     f"{len(images2)} *_11.png frames (expected equal, non-zero)")
            flows = [None] * len(images1)
            if split == "train":
                flows = sorted_glob(root, folder, "flow_occ", "*_10.png")
                if len(flows) != len(images1):
                    raise ManualDirError(f"KITTI 2015: expected {len(images1)} flow files "
                                         f"{os.path.join(root, folder, 'flow_occ')}/*_10.png, found {len(flows)}")
            pairs = []
            for im1, im2, flow in zip(images1, images2, flows):
                fid = os.path.basename(im1)
                pairs.append(PairFiles(im1, im2, flow, "kitti" if flow else None, fid.split("_")[0], 10, fid))
            splits[split] = pairs
        return splits
