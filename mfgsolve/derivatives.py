"""Space derivatives of a network field at a batch of points: the engines behind the lowered residuals.

A lowered residual asks a cache for derivative terms of u, m or log m: a tuple of coordinate indices
(``(0,)`` is d/dx0, ``(0, 1)`` is d2/dx0dx1) or ``"lap"``, the Laplacian, when the lowering found the
residual uses the second derivatives only through their sum. Three engines compute them:

- ``"autograd"``: reverse mode, one backward pass per gradient row (the Laplacian costs d + 1 passes);
  any order and any mixed partial.
- ``"func"``: ``torch.func`` forward-over-reverse, vectorised with ``vmap``: the gradient and the exact
  Laplacian (the trace of the Hessian, one Hessian-vector product per coordinate, all batched) in one
  call instead of d + 1 backward passes. Other terms fall back to reverse mode.
- ``"hutchinson"``: like ``"func"`` but the trace is the unbiased Hutchinson estimate
  ``mean_k v_k^T H v_k`` over ``probes`` Rademacher vectors per point (cost independent of d). Two
  independent estimates are drawn (:meth:`FuncDerivativeCache.second_estimate`): the square of one
  noisy residual would be biased (E[r^2] = r^2 + Var r, which penalises the off-diagonal Hessian),
  the product of two independent ones is not, and the solver trains on that product.

``"auto"`` picks by dimension (:func:`choose_engine`: reverse mode below d = 64, Hutchinson from
there; torch.func was not faster in a whole training step on CPU); the choice is overridable with the
solver option ``derivatives``. Parameter gradients flow through all of them (training differentiates the residuals
with respect to the network weights).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["ENGINES", "DerivativeCache", "FuncDerivativeCache", "choose_engine", "make_cache"]

ENGINES = ("auto", "autograd", "func", "hutchinson")
Index = tuple[int, ...] | str

# Measured on CPU, one thread (docs/high_dimension.md; `mfgsolve bench derivatives`): gradient +
# Laplacian + weight backward of a width-48 MLP, batch 512: reverse mode 0.019 / 0.040 / 0.091 /
# 0.238 s at d = 8 / 16 / 32 / 64, torch.func 0.021 / 0.034 / 0.093 / 0.185, Hutchinson (4 probes)
# 0.017 / 0.019 / 0.021 / 0.027. In a whole joint training step torch.func was slower than reverse
# mode (d = 16: 0.095 vs 0.054 s; d = 32: 0.177 vs 0.105 s), so "auto" never picks it: reverse mode
# (exact) below HUTCHINSON_FROM_DIM, the stochastic trace from there on.
HUTCHINSON_FROM_DIM = 64


def choose_engine(name: str, dim: int, laplacian: bool = True) -> str:
    """The engine ``name`` resolves to in dimension ``dim`` ("auto" picks by dimension).

    Args:
        name: one of ``ENGINES``.
        dim: space dimension.
        laplacian: whether the residuals have a Laplacian term. Without one a trace engine has
            nothing to speed up: "auto" resolves to "autograd" and "func"/"hutchinson" are refused.

    Raises:
        ValueError: unknown name, or a trace engine without a Laplacian (message ends with the fix).
    """
    if name not in ENGINES:
        raise ValueError(f"unknown derivative engine {name!r}; choose one of {', '.join(ENGINES)}")
    if not laplacian:
        if name in ("func", "hutchinson"):
            raise ValueError(
                f"derivatives={name!r} speeds up Laplacians, and these residuals have none (second "
                "derivatives enter one coordinate at a time); fix: use derivatives='autograd' or 'auto'"
            )
        return "autograd"
    if name != "auto":
        return name
    return "hutchinson" if dim >= HUTCHINSON_FROM_DIM else "autograd"


class DerivativeCache:
    """Values and coordinate derivatives of one scalar field at a fixed batch of points (reverse mode).

    Derivatives are keyed by the sorted tuple of coordinate indices (``(0, 0)`` is d2/dx0^2), or
    ``"lap"``. Asking for an order-k derivative computes the order-(k-1) parent once and
    differentiates it in one backward pass, which yields the derivatives in *all* coordinates at once;
    they are all cached.

    Args:
        points: (n, D) tensor with ``requires_grad=True``.
        values: (n,) tensor, a differentiable function of ``points``.
        frozen: if True, returned tensors are detached from the network parameters (useful when the
            other player's field is a constant for the current update); x-derivatives are still exact.
        create_graph: keep the graph of the derivatives w.r.t. the parameters (needed for training).
    """

    def __init__(
        self,
        points: torch.Tensor,
        values: torch.Tensor,
        frozen: bool = False,
        create_graph: bool = True,
    ):
        self.points = points
        self.frozen = frozen
        self.create_graph = create_graph
        self._raw: dict[tuple[int, ...], torch.Tensor] = {(): values}
        self._out: dict[Index, torch.Tensor] = {}

    def second_estimate(self) -> DerivativeCache:
        """The cache giving an independent second estimate of each Laplacian: itself, as exact
        engines have nothing random (the stochastic trace's cache overrides this)."""
        return self

    @property
    def values(self) -> torch.Tensor:
        return self._raw[()]

    def __call__(self, index: Sequence[int] | str) -> torch.Tensor:
        key: Index = index if isinstance(index, str) else tuple(sorted(index))
        if key not in self._out:
            raw = self._compute(key)
            self._out[key] = raw.detach() if self.frozen else raw
        return self._out[key]

    def _compute(self, key: Index) -> torch.Tensor:
        if key == "lap":
            return sum(self._derivative((j, j)) for j in range(self.points.shape[1]))
        return self._derivative(key)  # type: ignore[arg-type]

    def _derivative(self, key: tuple[int, ...]) -> torch.Tensor:
        if key in self._raw:
            return self._raw[key]
        parent = key[:-1]
        base = self._derivative(parent)
        if not base.requires_grad:  # a field constant in x (e.g. a detached input): derivative 0
            grads = torch.zeros_like(self.points)
        else:
            (grads,) = torch.autograd.grad(
                base.sum(), self.points, create_graph=True, allow_unused=True
            )
            if grads is None:
                grads = torch.zeros_like(self.points)
        for j in range(self.points.shape[1]):
            self._raw.setdefault(tuple(sorted(parent + (j,))), grads[:, j])
        return self._raw[key]


class FuncDerivativeCache(DerivativeCache):
    """Gradient and Laplacian by ``torch.func`` (forward-over-reverse, ``vmap``); others by reverse mode.

    Args:
        points: (n, D) tensor (``requires_grad=True`` if terms beyond gradient/Laplacian are asked).
        fn: the field as a function of a batch of points, (n, D) -> (n,).
        frozen, create_graph: as for :class:`DerivativeCache`.
        probes: None for the exact Laplacian; else an (n, k, D) tensor of probe vectors for the
            Hutchinson estimate ``mean_k v^T H v`` (Rademacher vectors make it unbiased).
        paired: split the probes in two halves: ``"lap"`` is the estimate from the first half,
            :meth:`second_estimate` gives the terms with the estimate from the second.
    """

    def __init__(
        self,
        points: torch.Tensor,
        fn: Callable[[torch.Tensor], torch.Tensor],
        frozen: bool = False,
        create_graph: bool = True,
        probes: torch.Tensor | None = None,
        paired: bool = False,
    ):
        super().__init__(points, fn(points), frozen, create_graph)
        self.fn = fn
        self.probes = probes
        self.paired = paired and probes is not None
        # the gradient and the Laplacian estimate(s): one, or two independent ones when paired
        self._first: tuple[torch.Tensor, tuple[torch.Tensor, ...]] | None = None

    def second_estimate(self) -> DerivativeCache:
        """The same terms with the independent second Laplacian estimate (paired probes), or self."""
        return _SecondEstimate(self) if self.paired else self

    def _compute(self, key: Index) -> torch.Tensor:
        if key == "lap" or (isinstance(key, tuple) and len(key) == 1):
            grads, laps = self._gradient_and_laplacians()
            return laps[0] if key == "lap" else grads[:, key[0]]
        return super()._compute(key)

    def laplacian_second(self) -> torch.Tensor:
        """The second, independent Laplacian estimate of a paired cache."""
        lap = self._gradient_and_laplacians()[1][1]
        return lap.detach() if self.frozen else lap

    def _gradient_and_laplacians(self) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        if self._first is None:
            self._first = self._compute_gradient_and_laplacians()
        return self._first

    def _compute_gradient_and_laplacians(self) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        from torch.func import grad, jvp, vmap

        fn = self.fn

        def scalar(x: torch.Tensor) -> torch.Tensor:
            return fn(x.unsqueeze(0)).squeeze(0)

        grad_fn = grad(scalar)

        def quadratic_forms(x: torch.Tensor, vs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # jvp of the gradient along v: (grad f(x), H v); v^T H v for each v
            g, hv = vmap(lambda v: jvp(grad_fn, (x,), (v,)))(vs)
            return g[0], (hv * vs).sum(-1)

        x = self.points
        if self.probes is None:
            eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
            grads, forms = vmap(quadratic_forms, in_dims=(0, None))(x, eye)
            return grads, (forms.sum(-1),)
        grads, forms = vmap(quadratic_forms)(x, self.probes)
        if self.paired:
            half = forms.shape[-1] // 2
            return grads, (forms[:, :half].mean(-1), forms[:, half:].mean(-1))
        return grads, (forms.mean(-1),)


class _SecondEstimate(DerivativeCache):
    """A view of a paired Hutchinson cache whose Laplacian is the second, independent estimate."""

    def __init__(self, parent: FuncDerivativeCache):  # noqa: D107 - a view, no state of its own
        self.parent = parent

    @property
    def values(self) -> torch.Tensor:
        return self.parent.values

    def __call__(self, index: Sequence[int] | str) -> torch.Tensor:
        return self.parent.laplacian_second() if index == "lap" else self.parent(index)


def make_cache(
    engine: str,
    points: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    frozen: bool = False,
    create_graph: bool = True,
    probes: int = 4,
    generator: torch.Generator | None = None,
    shard: tuple[int, int] = (0, 1),
) -> DerivativeCache:
    """A derivative cache of the field ``fn`` at ``points`` for a resolved engine name.

    Args:
        engine: "autograd", "func" or "hutchinson" (resolve "auto" with :func:`choose_engine`).
        points: (n, D) points, ``requires_grad=True``.
        fn: the field, (n, D) -> (n,).
        frozen, create_graph: as for :class:`DerivativeCache`.
        probes: Rademacher probes per point and estimate for "hutchinson" (two independent
            estimates are drawn, see :meth:`FuncDerivativeCache.second_estimate`).
        generator: the torch Generator the probes are drawn from (reproducible runs).
        shard: (rank, processes) of a data-parallel run: the probes are drawn for the global
            batch and this process keeps its share, as with the points.

    Returns:
        The cache.
    """
    if engine == "autograd":
        return DerivativeCache(points, fn(points), frozen, create_graph)
    if engine == "func":
        return FuncDerivativeCache(points, fn, frozen, create_graph)
    if engine == "hutchinson":
        n, dim = points.shape
        rank, size = shard
        signs = torch.randint(0, 2, (n * size, 2 * probes, dim), generator=generator, device="cpu")
        vs = (2 * signs[rank * n : (rank + 1) * n] - 1).to(points.device, points.dtype)
        return FuncDerivativeCache(points, fn, frozen, create_graph, probes=vs, paired=True)
    raise ValueError(f"unknown derivative engine {engine!r}; choose one of {', '.join(ENGINES)}")
