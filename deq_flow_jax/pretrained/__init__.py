"""Pretrained models shipped inside the package: `deq_flow_jax/pretrained/NAME/`.

    variables, cfg = deq_flow_jax.load_pretrained()          # the default model
    variables, cfg = deq_flow_jax.load_pretrained("NAME")

Each `NAME/` is a model directory (`deq_flow_jax.model_io`: `model_config.json` with the
ModelConfig and the DEQ/evaluation settings, `variables.msgpack`, `SHA256SUMS`) plus a
`MODEL_CARD.md`; the checksums are verified at every load. The default model is the one
named in the `DEFAULT` file of the root, or the only one there. Models are written by
`python -m deq_flow_jax.pretrained.publish` (see its --help).

The root is this package's folder; the environment variable DEQ_FLOW_PRETRAINED_DIR (or
the `root` argument) points elsewhere, e.g. for tests.
"""
from __future__ import annotations

import os
import re

ENV_VAR = "DEQ_FLOW_PRETRAINED_DIR"
DEFAULT_FILE = "DEFAULT"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class NoPretrainedModel(FileNotFoundError):
    """No (such) pretrained model is installed."""


def root(root: str | None = None) -> str:
    """The folder holding the pretrained models: `root`, else $DEQ_FLOW_PRETRAINED_DIR, else
    this package's folder."""
    if root is None:
        root = os.environ.get(ENV_VAR) or os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def names(root_dir: str | None = None) -> list[str]:
    """Names of the installed models (folders of the root holding a model_config.json)."""
    from deq_flow_jax.model_io import CONFIG_NAME
    base = root(root_dir)
    if not os.path.isdir(base):
        return []
    return sorted(n for n in os.listdir(base) if NAME_RE.match(n)
                  and os.path.isfile(os.path.join(base, n, CONFIG_NAME)))


def default_name(root_dir: str | None = None) -> str:
    """The default model's name: the one in `DEFAULT`, else the only installed one."""
    base = root(root_dir)
    found = names(base)
    marker = os.path.join(base, DEFAULT_FILE)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8", errors="replace") as f:
            name = f.read().strip()
        if name not in found:
            raise NoPretrainedModel(f"{marker}: names {name!r}, which is not installed in {base} "
                                    f"(installed: {', '.join(found) or 'none'})")
        return name
    if not found:
        raise NoPretrainedModel(
            f"no pretrained model is installed (none in {base}); pass a model directory or a "
            "training workdir instead (--checkpoint DIR), or publish one with "
            "`python -m deq_flow_jax.pretrained.publish`")
    if len(found) > 1:
        raise NoPretrainedModel(f"{base}: holds several pretrained models ({', '.join(found)}) "
                                f"and no {DEFAULT_FILE} file naming the default; pass a name")
    return found[0]


def path(name: str | None = None, root_dir: str | None = None) -> str:
    """The folder of pretrained model `name` (None: the default one)."""
    base = root(root_dir)
    if name is None:
        name = default_name(base)
    found = names(base)
    if name not in found:
        raise NoPretrainedModel(f"no pretrained model named {name!r} in {base} "
                                f"(installed: {', '.join(found) or 'none'})")
    return os.path.join(base, name)


def load(name: str | None = None, root_dir: str | None = None):
    """(variables, ModelConfig, DEQConfig or None) of a pretrained model, checksums verified."""
    from deq_flow_jax import checkpoints
    return checkpoints.load(path(name, root_dir))


def load_pretrained(name: str | None = None, root_dir: str | None = None):
    """(variables, ModelConfig) of the pretrained model `name` (None: the default one).

    variables: {"params", "batch_stats"} of float32 jax arrays, ready for
    `deq_flow_jax.estimate_flow(variables, cfg, image1, image2)`. To estimate with the solver
    settings shipped with the model (deq-flow-s-cpu: 24 Anderson steps, what it was trained
    and measured with; estimate_flow's own default is the official 60), take its DEQConfig
    too: `variables, cfg, deq = deq_flow_jax.checkpoints.load(None)` and pass `deq=deq`.
    deq-flow-s-cpu is also meant to be followed by a refinement of its flow
    (`deq_flow_jax.checkpoints.inference(None)` says {"refine": "fusion"}; the commands
    apply it): `flow = deq_flow_jax.refine_flow(image1, image2, flow)` per (H, W) pair.
    """
    variables, cfg, _ = load(name, root_dir)
    return variables, cfg
