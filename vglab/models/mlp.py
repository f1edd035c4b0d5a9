"""Immutable, validated descriptions of the networks vglab studies.

An ``MLP`` is a hashable value: it can key caches and be a static argument of ``jax.jit``.  It holds no
weights; the weights are drawn from a seed by ``vglab.core.init`` when a computation needs them.

Layer convention (l = 1..depth, every layer width × width, h_0 = x ~ N(0, I)):

    plain:               h_l = φ(W_l h_{l-1} + b_l)
    residual:            h_l = h_{l-1} + α · φ(W_l h_{l-1} + b_l)          (α = ``residual_scale``)
    norm="pre":          the branch reads LN(h_{l-1}) instead of h_{l-1}:  φ(W_l LN(h_{l-1}) + b_l)
    norm="post":         LN is applied to the layer's output:  h_l = LN(plain or residual update)

LN(x) = (x − mean x) / √(var x + ε), ε = 1e-5, without learnable gain or bias (they are 1 and 0 at
initialisation).  ``norm="layernorm"`` is accepted as a synonym of ``"pre"``, the placement of modern
transformers (Xiong et al. 2020).  The loss is L = ⟨g, h_L⟩ with g ~ N(0, I), so ∂L/∂h_L = g.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vglab.core.activations import ACTIVATIONS
from vglab.core.init import INITS, default_weight_std
from vglab.core.validation import check_choice, check_float, check_int, keywords_checked

MAX_DEPTH = 10_000
MAX_WIDTH = 4096
NORMS = (None, "pre", "post")
_NORM_NAMES = ("none", "pre", "post", "layernorm")
LAYERNORM_EPS = 1e-5


def _canonical_norm(norm):
    if norm is None or norm == "none":
        return None
    name = check_choice("norm", norm, _NORM_NAMES)
    return "pre" if name == "layernorm" else name


@keywords_checked(owner="vglab.MLP")
@dataclass(frozen=True)
class MLP:
    """A deep fully-connected network of ``depth`` square layers of ``width`` units.

    activation:     one of sigmoid, tanh, relu, leaky_relu, gelu, linear.
    init:           xavier, he, lecun, orthogonal or gaussian; sets σ_w unless ``weight_std`` is given.
    weight_std:     σ_w, with W_l ~ N(0, σ_w²/width) (orthogonal: W_l = σ_w Q_l).
    bias_std:       σ_b, with b_l ~ N(0, σ_b²).
    residual:       h_l = h_{l-1} + α F_l(h_{l-1}) with α = ``residual_scale``.
    norm:           None, "pre" or "post" LayerNorm ("layernorm" means "pre").
    leaky_slope:    the negative slope a of leaky ReLU.
    """

    depth: int
    width: int
    activation: str = "tanh"
    init: str = "xavier"
    weight_std: float | None = None
    bias_std: float = 0.0
    residual: bool = False
    norm: str | None = None
    residual_scale: float = 1.0
    leaky_slope: float = 0.01
    sigma_w: float = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "depth", check_int("depth", self.depth, 1, MAX_DEPTH))
        set_(self, "width", check_int("width", self.width, 1, MAX_WIDTH))
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("init", self.init, INITS)
        if self.weight_std is not None:
            set_(self, "weight_std", check_float("weight_std", self.weight_std, 0.0, 100.0))
        set_(self, "bias_std", check_float("bias_std", self.bias_std, 0.0, 100.0))
        if not isinstance(self.residual, bool):
            raise ValueError(f"residual must be True or False, got {self.residual!r}")
        set_(self, "norm", _canonical_norm(self.norm))
        set_(self, "residual_scale",
             check_float("residual_scale", self.residual_scale, 0.0, 100.0, low_inclusive=False))
        set_(self, "leaky_slope", check_float("leaky_slope", self.leaky_slope, -10.0, 10.0))
        sigma_w = default_weight_std(self.init) if self.weight_std is None else self.weight_std
        set_(self, "sigma_w", float(sigma_w))

    @property
    def orthogonal(self) -> bool:
        return self.init == "orthogonal"

    def replace(self, **changes) -> MLP:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_code(self) -> str:
        """The Python expression that rebuilds this network, e.g. ``vglab.MLP(depth=50, width=256, ...)``."""
        defaults = MLP(depth=1, width=1)
        parts = [f"depth={self.depth}", f"width={self.width}"]
        for name in ("activation", "init", "weight_std", "bias_std", "residual", "norm",
                     "residual_scale", "leaky_slope"):
            value = getattr(self, name)
            if value != getattr(defaults, name):
                parts.append(f"{name}={value!r}")
        return f"vglab.MLP({', '.join(parts)})"

    @property
    def n_parameters(self) -> int:
        return self.depth * (self.width * self.width + self.width)

    def __hash__(self):
        return hash(tuple(getattr(self, f) for f in (
            "depth", "width", "activation", "init", "weight_std", "bias_std", "residual", "norm",
            "residual_scale", "leaky_slope")))


def weight_bytes(depth: int, width: int, n_seeds: int = 1) -> int:
    """float32 bytes of the weight matrices of ``n_seeds`` networks."""
    return 4 * n_seeds * depth * width * width


def check_memory(depth: int, width: int, n_seeds: int, budget_bytes: int) -> None:
    """Refuse networks whose weights alone would exceed ``budget_bytes``, naming the bound."""
    need = weight_bytes(depth, width, n_seeds)
    if need > budget_bytes:
        raise ValueError(
            f"depth × width² × n_seeds = {depth} × {width}² × {n_seeds} float32 weights need "
            f"{need / 2**30:.1f} GiB, above the {budget_bytes / 2**30:.0f} GiB bound; "
            f"reduce depth, width or n_seeds")



