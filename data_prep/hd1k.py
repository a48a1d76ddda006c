"""HD1K (Kondermann et al. 2016): sparse ground truth, training only.

Manual dir: the HD1K folder (or its parent, e.g. `HD1k`) with
  hd1k_input/image_2/000000_0000.png ...  and  hd1k_flow_gt/flow_occ/000000_0000.png ...
Pairs are consecutive frames of each sequence (%06d prefix), with the flow of frame 1.
"""
from __future__ import annotations

import os

from data_prep.common import ManualDirError, ManualFlowBuilder, PairFiles, find_root, sorted_glob


class Hd1k(ManualFlowBuilder):
    """HD1K; split 'train'."""

    name = "hd1k"
    DESCRIPTION = __doc__
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def list_splits(self, manual_dir):
        root = find_root(manual_dir, os.path.join("hd1k_input", "image_2"), ("HD1k", "HD1K", "hd1k"), "HD1K")
        if not os.path.isdir(os.path.join(root, "hd1k_flow_gt", "flow_occ")):
            raise ManualDirError(f"HD1K: expected {os.path.join(root, 'hd1k_flow_gt', 'flow_occ')}")
        pairs, seq = [], 0
        while True:
            flows = sorted_glob(root, "hd1k_flow_gt", "flow_occ", f"{seq:06d}_*.png")
            images = sorted_glob(root, "hd1k_input", "image_2", f"{seq:06d}_*.png")
            if not flows:
                break
            if len(images) < len(flows):
                raise ManualDirError(f"HD1K: sequence {seq:06d} has {len(images)} images for {len(flows)} flows")
            for i in range(len(flows) - 1):
                pairs.append(PairFiles(images[i], images[i + 1], flows[i], "kitti", f"{seq:06d}", i,
                                       os.path.basename(images[i])))
            seq += 1
        if not pairs:
            raise ManualDirError(f"HD1K: no flows found as {root}/hd1k_flow_gt/flow_occ/000000_0000.png")
        return {"train": pairs}
