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

Width profiles: ``MLP(widths=(n_0, n_1, …, n_L))`` has layers h_l = φ(W_l h_{l-1} + b_l) with
W_l ∈ ℝ^{n_l × n_{l-1}} (plain layers only: residual and LayerNorm need square layers), x ∈ ℝ^{n_0},
g ∈ ℝ^{n_L}; the init schemes then differ by their fan (``vglab.core.init``).  A profile whose sizes are all
equal *is* the square network (``MLP(widths=(n,)*(L+1)) == MLP(depth=L, width=n)``).  The profile's *body* is
its longest run of equal consecutive sizes (the m × m layers); ``depth=`` on a profile (or ``replace(depth=…)``)
resizes the body and keeps the layers before and after it.  Profiles that differ only in the body's length
form one *family*: they share one compiled program (no recompile on a depth change), like square nets.
"""

from __future__ import annotations

from dataclasses import field

from vglab.core.activations import ACTIVATIONS
from vglab.core.banks import check_budget
from vglab.core.config import Config, checked, choice, config, flag, integer, real
from vglab.core.init import INIT_NAMES, default_weight_std
from vglab.core.validation import check_choice, check_int

MAX_DEPTH = 10_000
MAX_WIDTH = 4096
NORMS = (None, "pre", "post")
_NORM_NAMES = ("none", "pre", "post", "layernorm")
LAYERNORM_EPS = 1e-5


def profile_body(widths: tuple[int, ...]) -> tuple[int, int]:
    """(start, stop): widths[start..stop] is the longest run of equal consecutive sizes (the first such run
    on ties), i.e. layers start+1..stop are the body's square layers; (0, 0) when no two neighbours agree."""
    best, start = (0, 0), 0
    for i in range(1, len(widths) + 1):
        if i == len(widths) or widths[i] != widths[start]:
            if i - 1 - start > best[1] - best[0]:
                best = (start, i - 1)
            start = i
    return best


def _check_widths(widths) -> tuple[int, ...]:
    if isinstance(widths, str | bytes) or not hasattr(widths, "__len__"):
        raise ValueError(f"widths must be a tuple of layer sizes (n_0, n_1, ..., n_L), e.g. (784, 512, 128, 10), "
                         f"got {widths!r}")
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list at least 2 sizes (the input n_0 and the output n_L), got {widths!r}")
    if len(widths) > MAX_DEPTH + 1:
        raise ValueError(f"widths may list at most {MAX_DEPTH + 1} sizes (depth ≤ {MAX_DEPTH}), got {len(widths)}")
    return tuple(check_int(f"widths[{i}]", n, 1, MAX_WIDTH) for i, n in enumerate(widths))


def _canonical_norm(norm, name: str = "norm"):
    if norm is None or norm == "none":
        return None
    norm = check_choice(name, norm, _NORM_NAMES)
    return "pre" if norm == "layernorm" else norm


def norm_field(default=None):
    """A LayerNorm placement field: None, "pre" or "post" ("none" means None, "layernorm" means "pre")."""
    return checked(lambda name, value: _canonical_norm(value, name), default=default, optional=False)


@config
class MLP(Config):
    """A deep fully-connected network of ``depth`` square layers of ``width`` units, or of the layer sizes
    ``widths=(n_0, …, n_L)`` (a width profile; see the module docstring).

    activation:     one of sigmoid, tanh, relu, leaky_relu, gelu, linear, elu, silu.
    init:           xavier, he, lecun, orthogonal or gaussian; sets σ_w unless ``weight_std`` is given; also
                    he_fan_in (= he), he_fan_out, and constant (every unit identical: no symmetry breaking).
    widths:         (n_0, …, n_L) layer sizes instead of depth × width (plain layers, not orthogonal).
    weight_std:     σ_w, with W_l ~ N(0, σ_w²/width) (orthogonal: W_l = σ_w Q_l).
    bias_std:       σ_b, with b_l ~ N(0, σ_b²).
    residual:       h_l = h_{l-1} + α F_l(h_{l-1}) with α = ``residual_scale``.
    norm:           None, "pre" or "post" LayerNorm ("layernorm" means "pre").
    leaky_slope:    the negative slope a of leaky ReLU.
    """

    depth: int | None = integer(1, MAX_DEPTH, default=None)
    width: int | None = integer(1, MAX_WIDTH, default=None)
    activation: str = choice(ACTIVATIONS, default="tanh")
    init: str = choice(INIT_NAMES, default="xavier")
    weight_std: float | None = real(0.0, 100.0, default=None)
    bias_std: float = real(0.0, 100.0, default=0.0)
    residual: bool = flag(default=False)
    norm: str | None = norm_field()
    residual_scale: float = real(0.0, 100.0, low_inclusive=False, default=1.0)
    leaky_slope: float = real(-10.0, 10.0, default=0.01)
    widths: tuple[int, ...] | None = None
    sigma_w: float = field(init=False, repr=False, compare=False)

    CODE_ALWAYS = ("depth", "width")

    def validate(self):
        if self.widths is not None:
            self._set_profile()
        elif self.depth is None or self.width is None:
            raise ValueError("vglab.MLP needs depth= and width= (square layers), or widths=(n_0, ..., n_L)")
        sigma_w = default_weight_std(self.init) if self.weight_std is None else self.weight_std
        object.__setattr__(self, "sigma_w", float(sigma_w))
        plain_only = [why for why, bad in (("residual=True", self.residual), (f"norm={self.norm!r}", self.norm))
                      if bad]
        if self.widths is not None:
            if plain_only:
                raise ValueError(f"a width profile has plain layers only: {plain_only[0]} needs square layers "
                                 f"(use depth= and width=)")
            if self.init == "orthogonal":
                raise ValueError("init='orthogonal' needs square layers (use depth= and width=, or another init)")
        if self.init == "constant" and plain_only:
            raise ValueError(f"init='constant' is for plain layers: {plain_only[0]} is not supported with it")

    def _set_profile(self):
        """Validate ``widths`` against depth/width; resize the body to ``depth``; canonicalise square ones."""
        set_ = object.__setattr__
        widths = _check_widths(self.widths)
        start, stop = profile_body(widths)
        if self.depth is not None and self.depth != len(widths) - 1:
            depth = check_int("depth", self.depth, 1, MAX_DEPTH)
            body = depth - (len(widths) - 1 - (stop - start))
            if stop == start or body < 1:
                raise ValueError(f"depth={depth} does not fit widths={widths!r}: a profile's depth changes only "
                                 f"its body (its longest run of equal sizes), which needs depth ≥ "
                                 f"{len(widths) - 1 - (stop - start) + 1}" if stop > start else
                                 f"depth={depth} does not fit widths={widths!r} (depth = len(widths) − 1 = "
                                 f"{len(widths) - 1}; it has no run of equal sizes to lengthen)")
            widths = widths[:start] + (widths[start],) * (body + 1) + widths[stop + 1:]
            start, stop = start, start + body
        body_width = widths[start] if stop > start else max(widths)
        if self.width is not None and self.width != body_width and len(set(widths)) > 1:
            raise ValueError(f"width={self.width!r} disagrees with widths={widths!r}; give widths= alone")
        set_(self, "depth", len(widths) - 1)
        set_(self, "width", body_width)
        set_(self, "widths", None if len(set(widths)) == 1 else widths)
    @property
    def orthogonal(self) -> bool:
        return self.init == "orthogonal"

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """(n_0, …, n_L): ``widths`` for a profile, (width,) × (depth+1) for a square network."""
        return self.widths if self.widths is not None else (self.width,) * (self.depth + 1)

    def replace(self, **changes) -> MLP:
        """A copy with some fields changed (validated again).  On a profile, ``depth=`` resizes the body and a
        new ``widths=`` replaces depth and width; on a square net, ``widths=`` makes it a profile."""
        if changes.get("widths") is not None:
            changes.setdefault("depth", None)
            changes.setdefault("width", None)
        elif "widths" in changes:  # widths=None: back to square, depth/width as given or as they are
            pass
        elif self.widths is not None and "width" in changes:
            raise ValueError("width= cannot change a width profile; give a new widths= instead")
        return super().replace(**changes)

    def code_parts(self) -> list[str]:
        """``depth=, width=`` then the non-default options; a profile is written ``widths=(...)`` first."""
        parts = super().code_parts()
        if self.widths is None:
            return parts
        return [f"widths={self.widths!r}"] + [p for p in parts if p.split("=")[0] not in ("depth", "width", "widths")]

    def gradient_profile(self, seed: int = 0, n_seeds: int = 1):
        """This network's ``vglab.GradientNorms`` (the same as ``vglab.gradient_norms(net, seed, n_seeds)``)."""
        from vglab.models.jacobians import gradient_norms  # the MLP's chain lives in jacobians, which imports mlp

        return gradient_norms(self, seed=seed, n_seeds=n_seeds)

    def jacobian_spectrum(self, seed: int = 0):
        """This network's ``vglab.JacobianSpectrum`` (the same as ``vglab.jacobian_spectrum(net, seed)``: the
        ``vglab.SpectrumModel`` protocol)."""
        from vglab.models.jacobians import jacobian_spectrum  # the MLP's QR chain lives in jacobians

        return jacobian_spectrum(self, seed=seed)

    def training_run(self, data=None, **options):
        """This network trained as a classifier of ``data`` (None: "digits"), every step recorded: a
        ``vglab.TrainingHistory`` (``vglab.training.train_mlp``; what ``vglab.train(net, data, **options)``
        dispatches to, the ``vglab.TrainingModel`` protocol).  Options: steps, optimizer, learning_rate,
        clip_norm, batch_size, seed, eval_every, progress, callback."""
        from vglab.training import train_mlp  # training wraps this body as a classifier, so it imports mlp

        return train_mlp(self, data, **options)

    @property
    def n_parameters(self) -> int:
        w = self.layer_widths
        return sum(w[l] * w[l + 1] + w[l + 1] for l in range(self.depth))


def check_square_random(net, function: str, instead: str = "use depth= and width= with a random init") -> MLP:
    """``net`` itself, if it is a ``vglab.MLP`` of square layers drawn at random (no width profile, no constant
    init): what the tools built on one weight bank of n × n draws need; else a ValueError naming ``function``,
    what is not supported and what to use ``instead``."""
    if not isinstance(net, MLP):
        raise ValueError(f"{function} expects a vglab.MLP, got {type(net).__name__}")
    if net.widths is not None or net.init == "constant":
        unsupported = "a width profile" if net.widths is not None else "init=constant"
        raise ValueError(f"{function} needs square layers drawn at random: {unsupported} is not supported (got "
                         f"{net.to_code()}); {instead}")
    return net


def weight_bytes(depth: int, width: int, n_seeds: int = 1) -> int:
    """float32 bytes of the weight matrices of ``n_seeds`` networks."""
    return 4 * n_seeds * depth * width * width


def check_memory(depth: int, width: int, n_seeds: int, budget_bytes: int) -> None:
    """Refuse networks whose weights alone would exceed ``budget_bytes``, naming the bound."""
    check_budget(weight_bytes(depth, width, n_seeds), budget_bytes,
                 f"depth × width² × n_seeds = {depth} × {width}² × {n_seeds} float32 weights need",
                 "depth, width or n_seeds")



