"""Shared machinery of the manual-download TFDS builders of the six benchmarks.

A builder lists the files of each split as `PairFiles` (checking the layout of the
user's copy and saying what was expected where), then reads and re-encodes them into
the common record layout of `deq_flow_jax.data.records`. Prepared with
`file_format='array_record'`; read with `tfds.data_source` / grain, no TensorFlow.
"""
from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np
import tensorflow_datasets as tfds

from deq_flow_jax.data.records import LocalDatasetInfo, flow_features, make_record
from deq_flow_jax.io import FlowFormatError, read_flow, read_image, read_kitti_flow


class ManualDirError(FileNotFoundError):
    """The manual directory is missing or lacks expected files."""


@dataclasses.dataclass(frozen=True)
class PairFiles:
    """The files of one record. `flow_kind`: 'dense' (.flo/.pfm), 'kitti' (16-bit PNG),
    'middlebury' (.flo whose unknown pixels hold 1e9 or more), None."""
    image1: str
    image2: str
    flow: str | None
    flow_kind: str | None
    scene: str
    frame: int
    id: str
    occlusion: str | None = None


def load_pair(p: PairFiles) -> dict:
    """Reads one pair's files -> a record (see `deq_flow_jax.data.records.make_record`).

    Raises:
      FlowFormatError naming the file: unreadable images or flow, ground truth holding
      NaN or inf (it would poison every metric computed on it).
    """
    img1, img2 = read_image(p.image1), read_image(p.image2)
    flow = valid = occ = None
    if p.flow_kind == "dense":
        flow = read_flow(p.flow)
    elif p.flow_kind == "kitti":
        flow, valid = read_kitti_flow(p.flow)
    elif p.flow_kind == "middlebury":
        # unknown flow is stored as 1e9 or more (1e10): not valid, and stored as zero so that
        # no 1e10 reaches a metric taken over all pixels
        flow = read_flow(p.flow)
        valid = np.all(np.abs(flow) < 1e9, axis=-1)
        flow = np.where(valid[..., None], flow, np.float32(0))
    if p.occlusion is not None:
        occ = read_image(p.occlusion)[..., 0] > 127
    if flow is not None and not np.isfinite(flow).all():
        bad = int(flow.size - np.count_nonzero(np.isfinite(flow)))
        raise FlowFormatError(f"{p.flow}: ground-truth flow holds {bad} non-finite values (NaN/inf)")
    if flow is not None and flow.shape[:2] != img1.shape[:2]:
        raise ValueError(f"{p.flow}: flow size {flow.shape[:2]} differs from image size "
                         f"{img1.shape[:2]} of {p.image1}")
    return make_record(img1, img2, flow, valid, occ, scene=p.scene, frame=p.frame, id=p.id)


def sorted_glob(*parts: str) -> list[str]:
    return sorted(glob.glob(os.path.join(*parts)))


def find_root(manual_dir, marker: str, names: tuple[str, ...], what: str) -> str:
    """The dataset root: `manual_dir` itself or one of its `names` sub-folders, whichever
    contains `marker` (a relative path)."""
    manual_dir = os.fspath(manual_dir)
    require_manual_dir(manual_dir, what)
    candidates = [manual_dir] + [os.path.join(manual_dir, n) for n in names]
    for c in candidates:
        if os.path.exists(os.path.join(c, marker)):
            return c
    raise ManualDirError(
        f"{what}: expected {marker!r} inside the manual dir {manual_dir}"
        f"{' (or in a sub-folder ' + ' / '.join(names) + ')' if names else ''}; not found")


def require_manual_dir(manual_dir: str, what: str) -> None:
    """Raises ManualDirError unless `manual_dir` is a folder; `what` names the download."""
    if not os.path.isdir(manual_dir):
        raise ManualDirError(f"manual dir {manual_dir} does not exist; download {what} and point "
                             "--manual-dir at it")


def require(files: list, description: str) -> list:
    if not files:
        raise ManualDirError(f"no files found: expected {description}")
    return files


class ManualFlowBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base class: subclasses define `list_splits(manual_dir) -> {split: [PairFiles]}`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    url_infos = None  # nothing is downloaded
    DESCRIPTION = ""

    def _info(self) -> tfds.core.DatasetInfo:
        return LocalDatasetInfo(builder=self, description=self.DESCRIPTION,
                                features=flow_features(), disable_shuffling=True)

    def list_splits(self, manual_dir: str) -> dict[str, list[PairFiles]]:
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        splits = self.list_splits(os.fspath(dl_manager.manual_dir))
        return {name: self._generate_examples(pairs) for name, pairs in splits.items() if pairs}

    def _generate_examples(self, pairs):
        for key, pair in enumerate(pairs):
            yield key, load_pair(pair)


def prepare_builder(builder_cls, manual_dir, data_dir, config=None) -> tfds.core.DatasetBuilder:
    """Checks the manual dir, then prepares the dataset under data_dir; returns the builder."""
    builder = builder_cls(config=config, data_dir=os.fspath(data_dir), file_format="array_record")
    builder.list_splits(os.fspath(manual_dir))  # fail early with a clear message
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual_dir)))
    return builder


def count_pairs(splits: dict[str, list[PairFiles]]) -> dict[str, int]:
    return {k: len(v) for k, v in splits.items()}

