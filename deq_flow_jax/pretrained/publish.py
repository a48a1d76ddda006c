"""Publish a trained model as a shipped pretrained model: `deq_flow_jax/pretrained/NAME/`.

    python -m deq_flow_jax.pretrained.publish WORKDIR_OR_MODEL_DIR NAME [--card-notes FILE]
        [--which best|latest] [--refine none|variational|fusion|fusion+dis] [--start zero|coarse|both|all]
        [--root DIR] [--overwrite] [--default]

Reads the source through `deq_flow_jax.checkpoints.load` (a training workdir's best
checkpoint by default, or a model directory), keeps the inference weights (params and
batch-norm statistics, no optimiser state) and writes a model directory with a checksum
manifest and a MODEL_CARD.md (facts read from the source, then the text of --card-notes:
data, recipe, CPU-hours, metrics, limits). The folder is written to a temporary sibling and
renamed into place; an existing NAME is replaced only with --overwrite and only if it is a
model written by this package. --default records NAME in the root's DEFAULT file.
--refine and --start store how the model is meant to be post-processed and where its solver
starts (the "inference" entry of model_config.json; `deq-flow infer / eval` and
benchmarks/pretrained.py then do so by default); without them a model directory's own entry
is kept, a workdir gets none.
The root is deq_flow_jax/pretrained/ unless --root or $DEQ_FLOW_PRETRAINED_DIR says otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

PROG = "python -m deq_flow_jax.pretrained.publish"


def _training_facts(source: str, which: str) -> list[str]:
    """Card lines about the training run of a workdir (config.json, checkpoint step, metrics)."""
    from deq_flow_jax import checkpoints
    step, metrics = checkpoints.workdir_checkpoint(source, which)
    lines = [(f"- checkpoint: the {which} checkpoint of the training workdir "
             f"`{os.path.basename(source)}`, step {step}")]
    if metrics:
        lines.append("- validation metrics stored with it: "
                     + ", ".join(f"{k} {float(v):.4g}" for k, v in sorted(metrics.items())))
    cfg_path = os.path.join(source, "config.json")
    if os.path.isfile(cfg_path):
        try:
            with open(cfg_path) as f:
                config = json.load(f)
        except (OSError, ValueError):
            config = {}
        data = config.get("data", {}) if isinstance(config, dict) else {}
        facts = [("training data (stage)", data.get("stage")),
                 ("validation set", data.get("val_dataset")),
                 ("crop size", data.get("crop_size")),
                 ("batch size", config.get("batch_size")),
                 ("steps planned", config.get("num_steps")),
                 ("learning rate", config.get("lr")),
                 ("seed", config.get("seed"))]
        lines += [f"- {k}: {v}" for k, v in facts if v is not None]
    return lines


def model_card(name: str, source: str, kind: str, which: str, variables, cfg, deq,
               notes: str | None, inference: dict | None = None) -> str:
    """The text of MODEL_CARD.md (facts read from the source, then the author's notes)."""
    import jax

    from deq_flow_jax import checkpoints
    n_params = int(sum(x.size for x in jax.tree.leaves(variables["params"])))
    ev = checkpoints.evaluation_deq(deq)
    lines = [f"# {name}", "",
             (f"DEQ-Flow ({cfg.name} variant{', DEQ-GMA' if cfg.gma else ''}) shipped with "
             "deq-flow-jax. Load it with `deq_flow_jax.load_pretrained("
             f"{name!r})`; `deq-flow infer/eval/export` use the default model when "
             "--checkpoint is omitted."), "",
             "## Model", "",
             (f"- variant: {cfg.name}; hidden/context {cfg.hidden_dim}, features {cfg.fnet_dim}, "
             f"weight norm {'on' if cfg.wnorm else 'off'}"),
             f"- parameters: {n_params:,} (float32)",
             f"- evaluation solver: {ev.f_solver}, {ev.eval_max_steps} steps "
             f"(f_max_steps {ev.f_max_steps} x eval_factor {ev.eval_factor}), tol {ev.f_tol:g} "
             f"({ev.f_stop_mode} residual)"
             + ("" if deq is not None else "; the source stored no DEQ config, so these are "
                "the fallback (official evaluation) settings"),
             ("- post-processing: "
              + (f"refinement of the flow, method {inference['refine']!r} "
                 "(`deq_flow_jax.refine_flow`), applied by the commands by default "
                 "(`--refine none` turns it off)"
                 if (inference or {}).get("refine", "none") != "none" else "none")),
             ("- solver start: "
              + (f"{inference['start']!r} (`deq_flow_jax.evaluate.starts`), applied by the "
                 "commands by default (`--start zero` turns it off)"
                 if (inference or {}).get("start", "zero") != "zero" else "zero flow (official)")),
             "", "## Source", ""]
    if kind == "workdir":
        lines += _training_facts(source, which)
    else:
        lines.append(f"- model directory `{os.path.basename(source)}`")
    lines += ["", "## Files", "",
              ("- `model_config.json`: ModelConfig and DEQConfig; `variables.msgpack`: flax msgpack "
              "of {params, batch_stats}; `SHA256SUMS`: checksums verified at every load "
              "(`sha256sum -c SHA256SUMS`).")]
    if notes:
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines) + "\n"


def publish(source: str, name: str, *, notes: str | None = None, which: str = "best",
            root_dir: str | None = None, overwrite: bool = False,
            make_default: bool = False, refine: str | None = None, start: str | None = None) -> str:
    """Writes pretrained model `name` from `source`; returns its folder. See the module doc."""
    from deq_flow_jax import checkpoints, model_io, pretrained
    from deq_flow_jax.io.common import atomic_write_bytes
    if not pretrained.NAME_RE.match(name):
        raise ValueError(f"NAME {name!r}: use letters, digits, '.', '_' and '-' "
                         "(starting with a letter or digit)")
    source = os.path.abspath(os.path.expanduser(source))
    base = pretrained.root(root_dir)
    marker = os.path.join(base, pretrained.DEFAULT_FILE)
    if make_default and os.path.lexists(marker):          # checked before anything is written
        old = ""
        if os.path.isfile(marker) and not os.path.islink(marker):
            with open(marker, encoding="utf-8", errors="replace") as f:
                old = f.read().strip()
        if not pretrained.NAME_RE.match(old):
            raise ValueError(f"{marker}: exists and is not a DEFAULT file written by publish; "
                             "refusing to replace it")
    model_io.check_destination(os.path.join(base, name), overwrite)
    kind = checkpoints.kind(source)
    inference = checkpoints.inference(source)
    if refine is not None:
        from deq_flow_jax.evaluate.refine import check_refine
        inference = dict(inference, refine=check_refine(refine))
    if start is not None:
        from deq_flow_jax.evaluate.starts import check_start
        inference = dict(inference, start=check_start(start))
    variables, cfg, deq = checkpoints.load(source, which)
    card = model_card(name, source, kind, which, variables, cfg, deq, notes, inference)
    out = checkpoints.save(os.path.join(base, name), variables, cfg, deq, overwrite=overwrite,
                           card=card, inference=inference)
    if make_default:
        atomic_write_bytes(marker, (name + "\n").encode())
    return out


def main(argv: list[str] | None = None) -> int:
    from deq_flow_jax.evaluate.refine import REFINE_METHODS
    from deq_flow_jax.evaluate.starts import START_MODES
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(prog=PROG, description=doc[0],
                                epilog="\n\n".join(doc[2:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="WORKDIR_OR_MODEL_DIR",
                   help="a training workdir (deq-flow train) or a model directory")
    p.add_argument("name", metavar="NAME", help="folder name of the published model")
    p.add_argument("--card-notes", metavar="FILE",
                   help="markdown appended to MODEL_CARD.md (data, recipe, CPU-hours, metrics, limits)")
    p.add_argument("--which", choices=("best", "latest"), default="best",
                   help="checkpoint of a training workdir (default best validation EPE)")
    p.add_argument("--refine", choices=REFINE_METHODS, default=None,
                   help="post-processing the commands apply by default (stored in "
                        "model_config.json; default: the source model directory's, else none)")
    p.add_argument("--start", choices=START_MODES, default=None,
                   help="where the commands start the solver by default (stored in "
                        "model_config.json; default: the source model directory's, else zero)")
    p.add_argument("--root", metavar="DIR", default=None,
                   help="where to publish (default $DEQ_FLOW_PRETRAINED_DIR or deq_flow_jax/pretrained)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing published model of that name")
    p.add_argument("--default", action="store_true", help="make it the default model (DEFAULT file)")
    a = p.parse_args(argv)
    try:
        notes = None
        if a.card_notes:
            try:
                with open(a.card_notes, encoding="utf-8") as f:
                    notes = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"--card-notes {a.card_notes}: cannot be read "
                                 f"({getattr(e, 'strerror', None) or e})") from None
        out = publish(a.source, a.name, notes=notes, which=a.which, root_dir=a.root,
                      overwrite=a.overwrite, make_default=a.default, refine=a.refine,
                      start=a.start)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from deq_flow_jax.cli.common import exit_process
    exit_process(main())
