"""TFDS builder of the synthetic flow dataset (no download needed) and `ensure_synthetic`.

Two variants:
  * "pairs": independent image pairs (FlyingChairs-like), one scene per record,
  * "video": sequences of `num_frames` frames with smooth motion; one record per
    consecutive pair, records stored in (scene, frame) order.
Every parameter that changes the data is part of the config name, so different
settings live side by side in one data_dir:
  `<data_dir>/synthetic_flow/<variant>_<H>x<W>_n<train>-<val>_f<frames>_s<seed>/1.1.0`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os

import tensorflow_datasets as tfds

from deq_flow_jax.data.records import LocalDatasetInfo, flow_features, make_record
from deq_flow_jax.data.synthetic import SceneConfig, generate_scene

_SPLIT_SALT = {"train": 0, "validation": 1}


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    """What to generate. `num_train`/`num_val` count scenes (pairs or sequences)."""
    variant: str = "pairs"
    height: int = 96
    width: int = 128
    num_train: int = 1000
    num_val: int = 100
    num_frames: int = 2
    seed: int = 0

    @staticmethod
    def make(variant="pairs", height=96, width=128, num_train=None, num_val=None,
             num_frames=None, seed=0) -> "SyntheticConfig":
        """A config with its canonical name; defaults depend on the variant."""
        if variant not in ("pairs", "video"):
            raise ValueError(f"synthetic variant must be 'pairs' or 'video', got {variant!r}")
        video = variant == "video"
        num_train = (40 if video else 1000) if num_train is None else int(num_train)
        num_val = (8 if video else 100) if num_val is None else int(num_val)
        num_frames = (10 if video else 2) if num_frames is None else int(num_frames)
        if not video and num_frames != 2:
            raise ValueError("the 'pairs' variant has num_frames=2; use variant='video'")
        if num_train < 0 or num_val < 0 or (num_train + num_val) == 0:
            raise ValueError(f"need num_train, num_val >= 0 and not both 0, got {num_train}, {num_val}")
        SceneConfig(height=height, width=width, num_frames=num_frames)  # validates sizes
        name = f"{variant}_{height}x{width}_n{num_train}-{num_val}_f{num_frames}_s{seed}"
        return SyntheticConfig(name=name, variant=variant, height=int(height), width=int(width),
                               num_train=num_train, num_val=num_val, num_frames=num_frames,
                               seed=int(seed), description=f"synthetic flow, {name}")

    @property
    def scene_config(self) -> SceneConfig:
        """Videos move half as fast per frame as pairs, so objects stay in view longer."""
        if self.variant == "video":
            return SceneConfig(height=self.height, width=self.width, num_frames=self.num_frames,
                               max_bg_shift=4.0, max_obj_shift=7.0)
        return SceneConfig(height=self.height, width=self.width, num_frames=self.num_frames)


class SyntheticFlow(tfds.core.GeneratorBasedBuilder):
    """Procedural flow scenes with exact ground truth (see `deq_flow_jax.data.synthetic`)."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Initial release.",
                     "1.1.0": "Object textures per bounding box; slower videos; has_* flags."}
    BUILDER_CONFIGS = [SyntheticConfig.make("pairs"), SyntheticConfig.make("video")]
    url_infos = None  # nothing to download (TFDS would look for a checksums file)

    def _info(self) -> tfds.core.DatasetInfo:
        return LocalDatasetInfo(
            builder=self, description=__doc__, features=flow_features(),
            disable_shuffling=True,  # keep (scene, frame) order; training shuffles with grain
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        cfg = self.builder_config
        splits = {}
        if cfg.num_train:
            splits["train"] = self._generate_examples("train", cfg.num_train)
        if cfg.num_val:
            splits["validation"] = self._generate_examples("validation", cfg.num_val)
        return splits

    def _generate_examples(self, split, count):
        cfg = self.builder_config
        scene_cfg = cfg.scene_config
        pairs_per_scene = cfg.num_frames - 1
        for s in range(count):
            scene = generate_scene((cfg.seed, _SPLIT_SALT[split], s), scene_cfg)
            for t in range(pairs_per_scene):
                key = s * pairs_per_scene + t
                yield key, make_record(
                    scene["frames"][t], scene["frames"][t + 1], scene["flows"][t],
                    occlusion=scene["occlusions"][t], scene=f"{split}_{s:05d}", frame=t,
                    id=f"{split}_{s:05d}_{t:03d}")


def synthetic_dir(data_dir, config: SyntheticConfig) -> str:
    """Where a prepared synthetic dataset lives."""
    return os.path.join(os.fspath(data_dir), "synthetic_flow", config.name, str(SyntheticFlow.VERSION))


def ensure_synthetic(data_dir, *, variant="pairs", height=96, width=128, num_train=None,
                     num_val=None, num_frames=None, seed=0) -> SyntheticFlow:
    """Builds the synthetic dataset under `data_dir` unless it is already there.

    Returns:
      The prepared `SyntheticFlow` builder (`builder.as_data_source(split)` reads it).
    """
    config = SyntheticConfig.make(variant, height, width, num_train, num_val, num_frames, seed)
    registered = {c.name for c in SyntheticFlow.BUILDER_CONFIGS}
    lock_dir = os.path.join(os.fspath(data_dir), "synthetic_flow")
    os.makedirs(lock_dir, exist_ok=True)
    # Several processes (hosts, test workers) may ask for the same dataset at once:
    # one builds it, the others wait and then reuse it.
    with _file_lock(os.path.join(lock_dir, f".{config.name}.lock")):
        builder = SyntheticFlow(config=config.name if config.name in registered else config,
                                data_dir=os.fspath(data_dir), file_format="array_record")
        builder.download_and_prepare()
    return builder


@contextlib.contextmanager
def _file_lock(path: str):
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
