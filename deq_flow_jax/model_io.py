"""The model directory: what `deq-flow init` / `convert` and the pretrained publisher write.

Layout of a model directory (format `deq-flow-jax/model/v2`):

    model_config.json   {"format": FORMAT, "model": ModelConfig.to_dict(),
                         "deq": DEQConfig.to_dict() or null,
                         "inference": {"refine": "variational"}   (optional)}
    variables.msgpack   {"params", "batch_stats"} as flax msgpack (float32, NHWC conv kernels)
    SHA256SUMS          sha256 of the two files above, `sha256sum -c` format
    MODEL_CARD.md       optional (shipped pretrained models), not checksummed

The weights are one file that needs no orbax; `SHA256SUMS` is verified at every load, so a
file whose bytes changed (scrambled, truncated, swapped) is an error naming it. Directories
of the older format v1 (orbax `variables/`, no checksums) are still read. The optional
"inference" entry holds how the model is meant to be run beyond its solver (`read_inference`:
the post-processing `refine`, evaluate/refine.py); a directory without it is run plainly.

Writing never deletes or replaces anything this package did not create: a new model is
written to a temporary sibling and renamed into place; an existing model directory of ours
is replaced only with `overwrite=True`; any other existing path is refused.

Most callers want `deq_flow_jax.checkpoints.load` / `save`, which add the shape check
against the config and also read training workdirs and the shipped pretrained models.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from deq_flow_jax.model.config import DEQConfig, ModelConfig

CONFIG_NAME = "model_config.json"
WEIGHTS_NAME = "variables.msgpack"
MANIFEST_NAME = "SHA256SUMS"
CARD_NAME = "MODEL_CARD.md"
FORMAT = "deq-flow-jax/model/v2"
LEGACY_FORMATS = ("deq-flow-jax/model/v1",)
LEGACY_VARIABLES_NAME = "variables"          # v1: an orbax StandardCheckpointer directory
CHECKSUMMED = (CONFIG_NAME, WEIGHTS_NAME)
# Every entry a model directory of ours may hold (what `write_model_dir` and v1 wrote).
OWN_ENTRIES = frozenset(CHECKSUMMED + (MANIFEST_NAME, CARD_NAME, LEGACY_VARIABLES_NAME))


class CheckpointError(ValueError):
    """A checkpoint cannot be used (corrupt, incomplete, not matching its config) or a model
    directory may not be written there. The message is one line naming the file.
    Re-exported as `deq_flow_jax.checkpoints.CheckpointError`."""


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def model_format(directory: str) -> str | None:
    """The format tag of `directory/model_config.json`, or None if it is not one of ours."""
    path = os.path.join(os.fspath(directory), CONFIG_NAME)
    try:
        data = _read_json(path)
    except (OSError, CheckpointError):
        return None
    fmt = data.get("format") if isinstance(data, dict) else None
    return fmt if fmt in (FORMAT,) + LEGACY_FORMATS else None


def check_destination(directory: str, overwrite: bool) -> bool:
    """Raises unless `directory` may be written; True when an existing model will be replaced."""
    if not os.path.lexists(directory):
        return False
    if os.path.islink(directory) or not os.path.isdir(directory):
        what = "a symbolic link" if os.path.islink(directory) else "not a directory"
        raise CheckpointError(f"{directory}: exists and is {what}; refusing to replace it")
    entries = sorted(os.listdir(directory))
    if not entries:
        return True                                   # an empty folder: nothing to lose
    if model_format(directory) is None:
        raise CheckpointError(f"{directory}: exists and is not a model directory written by "
                            f"deq-flow (holds {entries[0]!r}); refusing to replace it")
    foreign = [e for e in entries if e not in OWN_ENTRIES]
    if foreign:
        raise CheckpointError(f"{directory}: holds a model plus {foreign[0]!r}, which deq-flow did "
                            "not write; refusing to replace it")
    if not overwrite:
        raise CheckpointError(f"{directory}: a model already exists there; pass --overwrite "
                            "(overwrite=True) to replace it")
    return True


def write_model_dir(directory: str, variables: dict, cfg: ModelConfig,
                    deq: DEQConfig | None = None, *, overwrite: bool = False,
                    card: str | None = None, inference: dict | None = None) -> str:
    """Writes a model directory atomically; returns its absolute path.

    Args:
      directory: destination. Must not exist, be an empty folder, or (with `overwrite`) be a
        model directory of ours holding nothing else.
      variables: {"params", "batch_stats"?} pytrees of arrays (stored as float32 numpy).
      cfg: the architecture.
      deq: the solver settings the weights were trained with (sets the evaluation budget), or
        None when unknown (random init, converted official weights).
      overwrite: replace an existing model directory of ours.
      card: text of MODEL_CARD.md, or None for no card.
      inference: the "inference" entry ({"refine": ...}; see `read_inference`), or None / {}
        for none.
    """
    from flax import serialization

    from deq_flow_jax.io.common import atomic_write_bytes

    directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    inference = check_inference(inference, "the inference settings to write")
    replace = check_destination(directory, overwrite)
    parent = os.path.dirname(directory)
    name = os.path.basename(directory)
    os.makedirs(parent, exist_ok=True)
    state = {"params": variables["params"], "batch_stats": variables.get("batch_stats") or {}}
    state = _to_numpy(state)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=parent)
    trash = None
    try:
        atomic_write_bytes(os.path.join(tmp, WEIGHTS_NAME), serialization.msgpack_serialize(state))
        config = {"format": FORMAT, "model": cfg.to_dict(),
                  "deq": None if deq is None else deq.to_dict()}
        if inference:
            config["inference"] = inference
        atomic_write_bytes(os.path.join(tmp, CONFIG_NAME),
                           (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        write_manifest(tmp, CHECKSUMMED)
        if card is not None:
            atomic_write_bytes(os.path.join(tmp, CARD_NAME), card.encode())
        os.chmod(tmp, 0o777 & ~_umask())              # mkdtemp makes 0700: honour the umask
        if replace:
            # Move the old model into a fresh folder of our own (never a fixed name such as
            # DIR.old, which could be the user's), put the new one in place, drop the old one.
            trash = tempfile.mkdtemp(prefix=f".old-{name}-", dir=parent)
            os.rename(directory, os.path.join(trash, name))
        os.rename(tmp, directory)
    except BaseException:
        if trash is not None and not os.path.exists(directory) \
                and os.path.isdir(os.path.join(trash, name)):
            os.rename(os.path.join(trash, name), directory)      # put the old model back
        shutil.rmtree(tmp, ignore_errors=True)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return directory


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _to_numpy(tree):
    import jax
    return jax.tree.map(lambda x: np.asarray(x, np.float32), tree)


def write_manifest(directory: str, names) -> None:
    """Writes `directory/SHA256SUMS` for `names` (paths relative to `directory`)."""
    from deq_flow_jax.io.common import atomic_write_bytes
    sums = "".join(f"{sha256_file(os.path.join(directory, n))}  {n}\n" for n in sorted(names))
    atomic_write_bytes(os.path.join(directory, MANIFEST_NAME), sums.encode())


def verify_manifest(directory: str, required=CHECKSUMMED) -> None:
    """Checks every file listed in `directory/SHA256SUMS` (which must list `required`)."""
    path = os.path.join(directory, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: missing (the checksum manifest); the checkpoint is "
                              "incomplete")
    listed = {}
    with open(path, "rb") as f:
        for n, line in enumerate(f.read().decode("utf-8", "replace").splitlines(), 1):
            parts = line.split()
            name = parts[1].lstrip("*") if len(parts) == 2 else ""
            if len(parts[0] if parts else "") != 64 or not name or os.path.isabs(name) \
                    or ".." in name.split("/"):
                raise CheckpointError(f"{path}: line {n} is not '<sha256>  <file>'")
            listed[name] = parts[0].lower()
    for name in required:
        if name not in listed:
            raise CheckpointError(f"{path}: does not list {name}")
    for name, digest in sorted(listed.items()):
        file = os.path.join(directory, name)
        if not os.path.isfile(file):
            raise CheckpointError(f"{file}: listed in {MANIFEST_NAME} but missing")
        if sha256_file(file) != digest:
            raise CheckpointError(f"{file}: checksum mismatch (the file is corrupt or was "
                                  f"changed after it was written; expected sha256 {digest[:12]}...)")


def read_config(directory: str) -> tuple[ModelConfig, DEQConfig | None, str]:
    """(ModelConfig, DEQConfig or None, format tag) from `directory/model_config.json`."""
    directory = os.fspath(directory)
    path = os.path.join(directory, CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found (is {directory!r} a model directory written "
                                "by `deq-flow init` / `deq-flow convert`?)")
    data = _read_json(path)
    if isinstance(data, dict) and "format" not in data and "hidden_dim" in data:
        raise CheckpointError(f"{path}: is the model config of a training workdir, but "
                              f"{directory} has no checkpoints/ folder")
    if not isinstance(data, dict) or "model" not in data:
        raise CheckpointError(f"{path}: lacks the 'model' entry")
    fmt = data.get("format")
    if fmt not in (FORMAT,) + LEGACY_FORMATS:
        raise CheckpointError(f"{path}: unknown format {fmt!r} (expected {FORMAT!r})")
    try:
        cfg = ModelConfig.from_dict(data["model"])
        deq = DEQConfig.from_dict(data["deq"]) if data.get("deq") else None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad configuration: {e}") from None
    check_inference(data.get("inference"), path)
    return cfg, deq, fmt


INFERENCE_KEYS = ("refine", "start")


def check_inference(inference, where: str) -> dict:
    """`inference` ({"refine": one of REFINE_METHODS, "start": one of START_MODES}, either
    optional, or {}) as a dict, else CheckpointError naming `where`."""
    from deq_flow_jax.evaluate.refine import check_refine
    from deq_flow_jax.evaluate.starts import check_start
    if inference is None:
        return {}
    if not isinstance(inference, dict) or set(inference) - set(INFERENCE_KEYS):
        raise CheckpointError(f"{where}: 'inference' must be an object with at most the keys "
                              f"{', '.join(INFERENCE_KEYS)}; got {inference!r}")
    for key, check in (("refine", check_refine), ("start", check_start)):
        if key in inference:
            try:
                check(inference[key])
            except ValueError as e:      # "refine must be one of ...; got ..."
                raise CheckpointError(f"{where}: inference.{e}") from None
    return dict(inference)


def read_inference(directory: str) -> dict:
    """The model directory's "inference" entry ({} when it has none): how to run the model
    beyond its solver settings, e.g. {"refine": "fusion", "start": "both"}."""
    path = os.path.join(os.fspath(directory), CONFIG_NAME)
    data = _read_json(path)
    return check_inference(data.get("inference") if isinstance(data, dict) else None, path)


def load_config(directory: str) -> ModelConfig:
    """The ModelConfig of a model directory (reads only model_config.json)."""
    return read_config(directory)[0]


def read_model_dir(directory: str, abstract=None) -> tuple[dict, ModelConfig, DEQConfig | None]:
    """(variables as numpy, ModelConfig, DEQConfig or None) of a model directory.

    v2: checksums verified, then the msgpack weights read. v1 (orbax, no checksums): restored
    onto `abstract` (jax.ShapeDtypeStruct tree of {"params", "batch_stats"}), required for v1.
    The result is not checked against the config: `checkpoints.load` does that.
    """
    from flax import serialization

    directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    cfg, deq, fmt = read_config(directory)
    if fmt in LEGACY_FORMATS:
        return _read_v1(directory, cfg, abstract), cfg, deq
    verify_manifest(directory)
    path = os.path.join(directory, WEIGHTS_NAME)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        state = serialization.msgpack_restore(raw)
    except Exception as e:  # noqa: BLE001 - checksummed: only a writer bug gets here
        raise CheckpointError(f"{path}: not a readable msgpack weight file ({e})") from None
    if not isinstance(state, dict) or "params" not in state:
        raise CheckpointError(f"{path}: holds no 'params' collection")
    return {"params": state["params"], "batch_stats": state.get("batch_stats") or {}}, cfg, deq


def _read_v1(directory: str, cfg: ModelConfig, abstract) -> dict:
    from deq_flow_jax.checkpoints import quiet_orbax
    path = os.path.join(directory, LEGACY_VARIABLES_NAME)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: not found (the weights of this v1 model directory)")
    if abstract is None:
        raise ValueError("read_model_dir: a v1 (orbax) model directory needs `abstract`")
    import orbax.checkpoint as ocp
    try:
        with quiet_orbax(), ocp.StandardCheckpointer() as ckptr:
            state = ckptr.restore(path, abstract)
    except Exception as e:  # noqa: BLE001 - reported as one line naming the file
        raise CheckpointError(f"{path}: cannot be restored for {cfg.name} "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                            ) from None
    state = dict(state)
    return {"params": state["params"], "batch_stats": state.get("batch_stats") or {}}

