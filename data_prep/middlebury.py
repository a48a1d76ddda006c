"""Middlebury optical flow (Baker et al. 2011): real and rendered pairs with dense ground truth.

Manual dir: the folder holding the unpacked archives of vision.middlebury.edu/flow/data
(or any folder above them, up to three levels):
  other-data/<Scene>/frame10.png, frame11.png      (other-color-twoframes.zip or
                                                    other-color-allframes.zip)
  other-gt-flow/<Scene>/flow10.flo                 (other-gt-flow.zip)
  eval-data/<Scene>/frame10.png, frame11.png       (eval-color-twoframes.zip; optional)
The grey archives' `other-data-gray` / `eval-data-gray` are used where the colour ones are
absent (frames become grey RGB). Split 'train' is the eight pairs with ground truth
(Dimetrodon, Grove2, Grove3, Hydrangea, RubberWhale, Urban2, Urban3, Venus), frame 10 ->
frame 11; 'test' the evaluation pairs, without it. Pixels whose ground truth is unknown
(stored as 1e9 or more) are not valid and their flow is zero in the record.
"""
from __future__ import annotations

import os

from data_prep.common import ManualDirError, ManualFlowBuilder, PairFiles, require_manual_dir

GT = "other-gt-flow"
TRAIN_IMAGES = ("other-data", "other-data-gray")    # colour first
TEST_IMAGES = ("eval-data", "eval-data-gray")
_MAX_DEPTH = 3


def find_folders(manual_dir: str, names: tuple[str, ...]) -> dict[str, str]:
    """{name: path} of the first folder of each name at or below `manual_dir`, breadth first
    (at most `_MAX_DEPTH` levels down; the archives unpack with or without an outer folder)."""
    found, level = {}, [manual_dir]
    for _ in range(_MAX_DEPTH + 1):
        nxt = []
        for d in level:
            try:
                entries = sorted(e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))
            except OSError:
                continue
            for e in entries:
                path = os.path.join(d, e)
                if e in names and e not in found:
                    found[e] = path
                elif e not in names:
                    nxt.append(path)
        level = nxt
    return found


def _image_dir(found: dict, names: tuple[str, ...]) -> str | None:
    return next((found[n] for n in names if n in found), None)


def _pair(image_dir: str, scene: str, flow: str | None) -> PairFiles:
    image1, image2 = (os.path.join(image_dir, scene, f"frame{i}.png") for i in (10, 11))
    for path in (image1, image2):
        if not os.path.isfile(path):
            raise ManualDirError(f"Middlebury: expected {path}")
    return PairFiles(image1, image2, flow, "middlebury" if flow else None, scene, 10,
                     f"{scene}/frame10.png")


class MiddleburyFlow(ManualFlowBuilder):
    """Middlebury optical flow; splits 'train' (with ground truth) and 'test'."""

    name = "middlebury_flow"
    DESCRIPTION = __doc__
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def list_splits(self, manual_dir):
        require_manual_dir(manual_dir, "Middlebury's other-color-twoframes.zip and "
                                       "other-gt-flow.zip (unpacked)")
        found = find_folders(manual_dir, (GT,) + TRAIN_IMAGES + TEST_IMAGES)
        if GT not in found:
            raise ManualDirError(f"Middlebury: expected a folder {GT}/ (other-gt-flow.zip) inside the "
                                 f"manual dir {manual_dir}; not found")
        image_dir = _image_dir(found, TRAIN_IMAGES)
        if image_dir is None:
            raise ManualDirError(f"Middlebury: expected a folder other-data/ (other-color-twoframes.zip) "
                                 f"beside {found[GT]}; not found")
        scenes = sorted(s for s in os.listdir(found[GT])
                        if os.path.isfile(os.path.join(found[GT], s, "flow10.flo")))
        if not scenes:
            raise ManualDirError(f"Middlebury: no ground truth found as {found[GT]}/<Scene>/flow10.flo")
        splits = {"train": [_pair(image_dir, s, os.path.join(found[GT], s, "flow10.flo")) for s in scenes]}
        test_dir = _image_dir(found, TEST_IMAGES)
        if test_dir is not None:
            splits["test"] = [_pair(test_dir, s, None) for s in sorted(os.listdir(test_dir))
                              if os.path.isdir(os.path.join(test_dir, s))]
        return splits
