"""Static configuration of the DEQ-Flow network and of its equilibrium solve.

Both classes are frozen, hashable dataclasses: they can be `jax.jit` static
arguments. `ModelConfig.variant(name)` builds the published variants (SPEC
section 2); `to_dict()` / `from_dict()` give a JSON-friendly round trip (what
`model_config.json` next to a checkpoint holds).
"""
from __future__ import annotations

import dataclasses
from typing import Any

# name -> (hidden_dim = context_dim, fnet_dim, convc1, convc2, convf1, convf2, cat_dim)
_VARIANTS = {
    "tiny": (32, 64, 64, 48, 32, 16, 32),
    "B": (128, 256, 256, 192, 128, 64, 128),
    "L": (192, 256, 384, 288, 192, 96, 192),
    "H": (256, 256, 512, 384, 256, 128, 256),
    "G": (384, 256, 640, 480, 320, 160, 320),
    # D: B's widths; dilated / separable ConvGRU projections, GRU duplicated in f.
    "D": (128, 256, 256, 192, 128, 64, 128),
    # S (this project's addition, not in the paper): RAFT-small's encoders and a narrow update
    # block, sized so that a 2-core CPU can train it (docs/model.md, the shipped model).
    "S": (64, 128, 96, 64, 64, 32, 64),
}
_VARIANT_FIELDS = {"S": dict(encoder="small")}      # fields other than the widths
ENCODERS = ("basic", "small")
COMPUTE_DTYPES = ("float32", "bfloat16")
REMAT = ("none", "encoders", "all")
_ALIASES = {"base": "B", "large": "L", "huge": "H", "gigantic": "G", "T": "tiny"}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of a DEQ-Flow network (all widths in channels).

    Attributes:
      name: variant name (`tiny`, `B`, `L`, `H`, `G`, `D`); informational.
      hidden_dim: GRU hidden state channels (hdim).
      context_dim: context features channels (cdim == hdim in all variants).
      fnet_dim: feature encoder output channels (correlation features).
      corr_c1, corr_c2, flow_f1, flow_f2: motion encoder widths (convc1, convc2, convf1, convf2).
      cat_dim: motion feature channels (including the 2 flow channels).
      flow_head_dim: hidden width of the flow head (2*cat_dim; `old_version` caps it at 256).
      encoder: `basic` (RAFT's BasicEncoder, every published variant) or `small` (RAFT-small's
        bottleneck encoder, variant S) for both the feature and the context encoder.
      gma: DEQ-GMA global motion aggregation.
      wnorm: weight normalisation on the update block (params stored as g and v).
      dilated_gru: D variant: 1x5, 5x1 and 3x3 (dilation 4) GRU projections.
      gru_layers: number of (Sep)ConvGRU layers applied in sequence inside f (D: 2).
      corr_levels, corr_radius: correlation pyramid levels and lookup radius.
      old_version: official `--old_version` flow head width (min(256, 2*cat_dim)).
      compute_dtype: `float32` (default) or `bfloat16`: mixed precision as the official
        `--mixed_precision` (encoders, update block, GMA and mask head compute in bf16;
        parameters, correlation volume and lookup, flow/coords and the solver state stay float32).
      remat: rematerialisation in training (`model/remat.py:late_checkpoint`): `none`;
        `encoders`: the stem and each residual block of the feature and context encoders keep
        only their input for the backward pass and recompute the rest (their activations at 1/2
        and 1/4 resolution dominate the one-step-gradient memory); `all`: also the update
        operator f in the differentiated (phantom / IFT) steps. Values, gradients and parameter
        names are unchanged; it costs one more forward pass of the rematerialised parts.
    """

    name: str = "B"
    hidden_dim: int = 128
    context_dim: int = 128
    fnet_dim: int = 256
    corr_c1: int = 256
    corr_c2: int = 192
    flow_f1: int = 128
    flow_f2: int = 64
    cat_dim: int = 128
    flow_head_dim: int = 256
    encoder: str = "basic"
    gma: bool = False
    wnorm: bool = True
    dilated_gru: bool = False
    gru_layers: int = 1
    corr_levels: int = 4
    corr_radius: int = 4
    old_version: bool = False
    compute_dtype: str = "float32"
    remat: str = "none"

    def __post_init__(self):
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"ModelConfig.compute_dtype must be one of {COMPUTE_DTYPES}, "
                             f"got {self.compute_dtype!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"ModelConfig.encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.remat not in REMAT:
            raise ValueError(f"ModelConfig.remat must be one of {REMAT}, got {self.remat!r}")

    @property
    def mixed_precision(self) -> bool:
        """True when the network body computes in bfloat16."""
        return self.compute_dtype == "bfloat16"

    @classmethod
    def variant(cls, name: str, gma: bool = False, wnorm: bool = True,
                old_version: bool = False, **overrides: Any) -> "ModelConfig":
        """Builds a named variant: `tiny`, `S`, `B`, `L`, `H`, `G`, `D` (or `GMA-B`, ...).

        Args:
          name: variant name; a `GMA-` prefix turns on `gma`.
          gma: DEQ-GMA (global motion aggregation).
          wnorm: weight normalisation of the update block (official default: on).
          old_version: the official `--old_version` flow head (hidden width min(256, 2*cat_dim)).
          **overrides: any other field, replacing the variant's value.
        """
        key = name
        if key.upper().startswith("GMA-"):
            gma, key = True, key[4:]
        key = _ALIASES.get(key, key)
        if key not in _VARIANTS and key.upper() in _VARIANTS:
            key = key.upper()
        if key not in _VARIANTS:
            raise ValueError(f"unknown model variant {name!r}; expected one of "
                             f"{sorted(_VARIANTS)} (optionally prefixed 'GMA-')")
        hdim, odim, c1, c2, f1, f2, cat = _VARIANTS[key]
        head = min(256, 2 * cat) if old_version else 2 * cat
        fields = dict(name=("GMA-" + key) if gma else key, hidden_dim=hdim, context_dim=hdim,
                      fnet_dim=odim, corr_c1=c1, corr_c2=c2, flow_f1=f1, flow_f2=f2,
                      cat_dim=cat, flow_head_dim=head, gma=gma, wnorm=wnorm,
                      dilated_gru=(key == "D"), gru_layers=2 if key == "D" else 1,
                      old_version=old_version)
        fields.update(_VARIANT_FIELDS.get(key, {}))
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s) {sorted(unknown)}")
        fields.update(overrides)
        return cls(**fields)

    @property
    def corr_channels(self) -> int:
        """Channels of the looked-up correlation: levels * (2r+1)^2 (324 by default)."""
        return self.corr_levels * (2 * self.corr_radius + 1) ** 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of `to_dict`; a missing key takes its default (old files: float32)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"ModelConfig.from_dict: unknown field(s) {sorted(unknown)}")
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class DEQConfig:
    """How the equilibrium is solved and differentiated (official defaults, SPEC section 3).

    Attributes:
      f_solver: forward solver, `anderson` | `broyden` | `naive` (plain iteration).
      f_max_steps: forward f-evaluations in training (official f_thres).
      f_tol, f_stop_mode: stop when the residual (`abs` or `rel`) is below f_tol.
      grad: `phantom` (k-step damped unrolling from z*) or `ift` (implicit differentiation
        of the last term; the captured correction terms keep phantom gradients).
      phantom_steps: phantom steps k, one value or one per supervised term.
      tau: phantom damping.
      n_losses: number of fixed-point correction terms (evenly spaced along the solve).
      indexing: explicit step indices for the extra correction terms (used when n_losses == 1).
      b_solver, b_max_steps, b_tol, b_stop_mode: IFT backward solve.
      all_grad: keep gradients into the correlation lookup through the coordinates.
      eval_factor: evaluation uses f_max_steps * eval_factor steps (CLI default).
    """

    f_solver: str = "anderson"
    f_max_steps: int = 36
    f_tol: float = 1e-3
    f_stop_mode: str = "abs"
    grad: str = "phantom"
    phantom_steps: tuple = (1,)
    tau: float = 1.0
    n_losses: int = 1
    indexing: tuple = ()
    b_solver: str = "broyden"
    b_max_steps: int = 36
    b_tol: float = 1e-3
    b_stop_mode: str = "abs"
    all_grad: bool = False
    eval_factor: float = 1.5

    def __post_init__(self):
        if self.grad not in ("phantom", "ift"):
            raise ValueError(f"DEQConfig.grad must be 'phantom' or 'ift', got {self.grad!r}")
        from deq_flow_jax.solvers import check_stop_mode, solver_name
        check_stop_mode(self.f_stop_mode, "DEQConfig.f_stop_mode")
        check_stop_mode(self.b_stop_mode, "DEQConfig.b_stop_mode")
        solver_name(self.f_solver)   # raises on an unknown name (aliases are accepted)
        solver_name(self.b_solver)
        if isinstance(self.phantom_steps, int):
            object.__setattr__(self, "phantom_steps", (self.phantom_steps,))
        object.__setattr__(self, "phantom_steps", tuple(int(k) for k in self.phantom_steps))
        object.__setattr__(self, "indexing", tuple(int(k) for k in self.indexing))
        if self.n_losses < 1:
            raise ValueError(f"DEQConfig.n_losses must be >= 1, got {self.n_losses}")

    @property
    def eval_max_steps(self) -> int:
        """Evaluation step budget: int(f_max_steps * eval_factor) (official eval_f_thres)."""
        return int(self.f_max_steps * self.eval_factor)

    def loss_steps(self, max_steps: int | None = None) -> tuple:
        """Step counts at which the trajectory is supervised (official `indexing`), last = max_steps."""
        t = self.f_max_steps if max_steps is None else max_steps
        if self.n_losses > 1:
            n = min(t, self.n_losses)
            delta = t // n
            return tuple((k + 1) * delta for k in range(n))
        return tuple(self.indexing) + (t,)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DEQConfig":
        d = dict(d)
        for k in ("phantom_steps", "indexing"):
            if k in d:
                d[k] = tuple(d[k]) if not isinstance(d[k], int) else (d[k],)
        return cls(**d)
