"""Import official DEQ-Flow (PyTorch) checkpoints: `load_official(source, cfg) -> variables`.

`source` is a `.pth` file (needs torch: `pip install .[torch]`) or a mapping of
numpy arrays keyed by the official state_dict names. Handled:

* the `module.` prefix of nn.DataParallel checkpoints;
* weight-normalised update blocks (`weight_g` / `weight_v`), and plain weights (converted
  to the configuration's parameterisation either way);
* v1 key names (code.v.1.0 keeps the mask head at `update_block.mask.*`);
* batch-norm statistics (`running_mean`, `running_var`; `num_batches_tracked` ignored) and
  the duplicated `downsample.1.*` entries of stride-2 residual blocks (same tensors as `norm3`);
* DEQ-GMA (`attn.to_qk`, `update_block.gma.*`).

A missing, extra or mis-shaped key raises `CheckpointMismatchError` naming the key and
both shapes (and, for a different width, the variant the checkpoint looks like).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Tuple

import jax
import numpy as np

from deq_flow_jax.model.config import _VARIANTS, ModelConfig
from deq_flow_jax.model.deq_flow import init_variables


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the requested configuration."""


_BN = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def official_key(collection: str, path: Tuple[str, ...]) -> str:
    """Official state_dict name of one of our leaves, e.g. ('fnet', 'layer2_0', 'downsample', 'kernel')."""
    parts = list(path)
    if parts[-2:-1] == ["bn"]:                       # .../norm1/bn/scale -> .../norm1.weight
        leaf = _BN[parts[-1]]
        parts = parts[:-2] + [leaf]
    else:
        leaf = {"kernel": "weight", "bias": "bias", "weight_g": "weight_g",
                "weight_v": "weight_v", "gamma": "gamma"}[parts[-1]]
        parts = parts[:-1] + [leaf]
    out = []
    for p in parts:
        if p.startswith("layer") and "_" in p:        # layer2_0 -> layer2.0
            a, b = p.split("_")
            out += [a, b]
        elif p == "downsample":
            out += ["downsample", "0"]
        elif p.startswith("mask_"):                   # mask/mask_0 -> mask.0
            out += [p.split("_")[1]]
        else:
            out.append(p)
    return ".".join(out)


def _to_ours(name: str, arr: np.ndarray) -> np.ndarray:
    """Torch layout -> ours: conv OIHW -> HWIO, weight_g (O,1,1,1) -> (O,)."""
    if name.endswith("weight_g"):
        return arr.reshape(arr.shape[0])
    if arr.ndim == 4:
        return np.transpose(arr, (2, 3, 1, 0))
    return arr


def _to_torch_shape(name: str, shape: Tuple[int, ...]) -> Tuple[int, ...]:
    if name.endswith("weight_g"):
        return (shape[0], 1, 1, 1)
    if len(shape) == 4:
        kh, kw, ci, co = shape
        return (co, ci, kh, kw)
    return tuple(shape)


def read_state_dict(source: Any) -> Dict[str, np.ndarray]:
    """A `.pth` path or a mapping -> {official name: float32 numpy array} (prefixes stripped)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            raise CheckpointMismatchError(
                f"{path}: is a directory, not an official .pth checkpoint file (a model "
                "directory of ours needs no conversion: pass it as --checkpoint)")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"load_official: no such checkpoint file: {path}")
        try:
            import torch
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("load_official: reading .pth files needs torch "
                              "(pip install 'deq-flow-jax[torch]')") from e
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
            first = (str(e).strip().splitlines() or [""])[0][:160]
            raise CheckpointMismatchError(f"{path}: not a readable PyTorch checkpoint "
                                          f"({type(e).__name__}: {first})") from None
        if not isinstance(obj, Mapping):
            raise CheckpointMismatchError(f"{path}: holds a {type(obj).__name__}, not a "
                                          "state_dict")
        for k in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj, Mapping) and k in obj and isinstance(obj[k], Mapping):
                obj = obj[k]
        src = {k: v.detach().cpu().float().numpy() for k, v in obj.items() if hasattr(v, "numpy")}
        origin = path
    elif isinstance(source, Mapping):
        src = {k: np.asarray(v) for k, v in source.items()}
        origin = "<mapping>"
    else:
        raise TypeError(f"load_official: source must be a .pth path or a mapping, got "
                        f"{type(source).__name__}")
    out = {}
    for k, v in src.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k.endswith("num_batches_tracked"):
            continue
        if k.startswith("update_block.mask."):        # v1 names
            k = "mask." + k[len("update_block.mask."):]
        out[k] = np.asarray(v, np.float32)
    if not out:
        raise CheckpointMismatchError(f"load_official: {origin} holds no tensors")
    return out


def _guess_variant(sd: Mapping[str, np.ndarray]) -> str:
    w = sd.get("cnet.conv2.weight")
    if w is None:
        return "unknown"
    hdim = w.shape[0]
    names = [n for n, spec in _VARIANTS.items() if spec[0] == hdim and n != "D"]
    gma = "attn.to_qk.weight" in sd
    return ("GMA-" if gma else "") + (names[0] if names else f"hidden_dim={hdim}")


def load_official(source: Any, config: ModelConfig) -> dict:
    """Converts an official checkpoint into our variables {"params", "batch_stats"}.

    Args:
      source: path to a `.pth` file, or a mapping official-name -> array (NCHW layouts).
      config: the ModelConfig the checkpoint was trained with (e.g. `ModelConfig.variant("H")`).

    Returns:
      variables for `config` (weight norm stored as weight_g/weight_v iff config.wnorm).

    Raises:
      CheckpointMismatchError: a key missing, unexpected or of the wrong shape (named with
        both shapes), e.g. a checkpoint of another variant.
    """
    sd = read_state_dict(source)
    # Stride-2 blocks register their shortcut norm twice (norm3 and downsample.1). torch's
    # load_state_dict writes norm3 first and downsample.1 last, so downsample.1 wins.
    for k in [k for k in sd if ".downsample.1." in k]:
        sd[k.replace(".downsample.1.", ".norm3.")] = sd.pop(k)
    abstract = jax.eval_shape(lambda: init_variables(config, jax.random.PRNGKey(0), (64, 64)))
    used = set()
    guess = _guess_variant(sd)
    hint = (f" (the checkpoint looks like variant {guess!r}, the configuration is "
            f"{config.name!r})") if guess.split("-")[-1] != config.name.split("-")[-1] else ""

    def convert(collection, path, leaf):
        name = official_key(collection, tuple(p.key for p in path))
        want = _to_torch_shape(name, tuple(leaf.shape))
        if name.endswith(("weight_g", "weight_v")) and name not in sd:
            plain = name[:-2]                         # checkpoint without weight norm
            if plain in sd:
                used.add(plain)
                w = sd[plain]
                if name.endswith("_v"):
                    _check(plain, w.shape, want)
                    return _to_ours(plain, w)
                _check(plain, w.shape[:1], want[:1])
                return np.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(1)).astype(np.float32)
        if name.endswith(".weight") and name not in sd and name + "_v" in sd:
            g, v = sd[name + "_g"], sd[name + "_v"]       # fold weight norm of the checkpoint
            used.update([name + "_g", name + "_v"])
            _check(name + "_v", v.shape, want)
            norm = np.sqrt((v.reshape(v.shape[0], -1) ** 2).sum(1)).reshape(-1, 1, 1, 1)
            return _to_ours(name, v * (g.reshape(-1, 1, 1, 1) / norm))
        if name not in sd:
            raise CheckpointMismatchError(
                f"load_official: checkpoint lacks key {name!r} (expected shape {want}){hint}")
        _check(name, sd[name].shape, want)
        used.add(name)
        return _to_ours(name, sd[name])

    def _check(name, got, want):
        if tuple(got) != tuple(want):
            raise CheckpointMismatchError(
                f"load_official: key {name!r} has shape {tuple(got)} in the checkpoint but "
                f"{config.name!r} expects {tuple(want)}{hint}"
                + ("; a code.v.1.0 checkpoint needs old_version=True"
                   if "flow_head" in name and not config.old_version else ""))

    out = {}
    for coll in ("params", "batch_stats"):
        out[coll] = jax.tree_util.tree_map_with_path(
            lambda p, leaf, c=coll: np.asarray(convert(c, p, leaf), np.float32), abstract[coll])
    extra = sorted(set(sd) - used)
    if extra:
        k = extra[0]
        raise CheckpointMismatchError(
            f"load_official: unexpected key {k!r} with shape {tuple(sd[k].shape)} (expected shape: "
            f"none, {config.name!r} has no such parameter){hint}; {len(extra)} unexpected key(s) "
            f"in all: {extra[:5]}")
    return jax.tree.map(lambda a: jax.numpy.asarray(a), out)
