r"""Shampoo: one preconditioner per tensor dimension, applied as inverse 2k-th roots.

For a parameter ``W`` of order ``k`` (shape ``n_1 × ... × n_k``), ``G_{(i)}`` is
its gradient unfolded along dimension ``i`` (an ``n_i × ∏_{j≠i} n_j`` matrix) and
``×_i`` the product along dimension ``i`` (``(G ×_i P)`` multiplies every
dimension-``i`` fibre of ``G`` by ``P``).

.. math::

   \begin{aligned}
   & \textbf{input: } \eta \text{ (lr)},\ \epsilon,\ \mu \text{ (momentum)},
     \ \lambda \text{ (weight decay)},\ f \text{ (update\_freq)},
     \ d_{\max} \text{ (max\_precond\_dim)},\ W_0 \in \mathbb{R}^{n_1 \times \cdots
     \times n_k} \\
   & H^i_0 \leftarrow \epsilon I_{n_i}
     \quad (\text{the vector } \epsilon \mathbf 1_{n_i} \text{ when } n_i > d_{\max}) \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad G_t \leftarrow \nabla f_t(W_{t-1}) + \lambda W_{t-1} \\
   & \quad H^i_t \leftarrow H^i_{t-1} + G_{t(i)} G_{t(i)}^\top
     \quad (\text{diagonal: } + \operatorname{diag}(G_{t(i)} G_{t(i)}^\top)),
     \qquad i = 1, \ldots, k \\
   & \quad \textbf{if } (t - 1) \bmod f = 0: \quad
     P^i \leftarrow Q \operatorname{diag}\big(\max(\sigma_j, \epsilon)^{-1/(2k)}\big) Q^\top
     \text{ where } H^i_t = Q \operatorname{diag}(\sigma) Q^\top
     \quad (\text{diagonal: } P^i \leftarrow \max(H^i_t, \epsilon)^{-1/(2k)}) \\
   & \quad \tilde G_t \leftarrow G_t \times_1 P^1 \times_2 P^2 \cdots \times_k P^k \\
   & \quad B_t \leftarrow \tilde G_t \text{ if } t = 1 \text{ else }
     \mu B_{t-1} + \tilde G_t \qquad (\text{only when } \mu \neq 0;
     \text{ else } B_t = \tilde G_t) \\
   & \quad W_t \leftarrow W_{t-1} - \eta B_t
   \end{aligned}

Reference: Gupta, Koren & Singer, "Shampoo: Preconditioned Stochastic Tensor
Optimization", ICML 2018, arXiv:1802.09568 (Algorithm 2, the order-``k`` case;
for a matrix it is Algorithm 1, ``L^{-1/4} G R^{-1/4}``).

Defaults: ``lr=0.1, momentum=0, weight_decay=0, eps=1e-4 (alias epsilon),
update_freq=1, max_precond_dim=1024``.

Where ``ε`` enters, exactly: (1) the statistics start at ``H^i_0 = εI``, as in the
paper; (2) before the root, each eigenvalue of ``H^i_t`` is raised to at least
``ε``. In exact arithmetic (2) changes nothing, since ``H^i_t - εI`` is a sum of
positive semi-definite matrices; it only removes the small or negative
eigenvalues that round-off produces in the eigendecomposition. ``ε`` is never
added to a root or a denominator.

The roots are recomputed on steps ``1, 1+f, 1+2f, ...`` and cached in the state
(``inv_precond_<i>``) in between; every step's gradient is preconditioned with
the cached roots (never applied raw), while the statistics grow every step.
Eigendecompositions run in float64 (and the roots are cast back to the
parameter's dtype). A dimension longer than ``max_precond_dim`` keeps only the
diagonal of its statistic, an AdaGrad-style preconditioner with the same
exponent ``-1/(2k)``. A 0-d parameter is treated as a vector of length 1 (so its
update is AdaGrad's). Every dimension counts in ``k``, size-1 ones included.

Weight decay is L2: ``λW`` is added to the gradient before the statistics, so it
is preconditioned too. Momentum is heavy-ball momentum on the *preconditioned*
gradient, with the buffer starting at ``G̃_1`` (as SGD's starts at ``g_1``).

State per parameter: ``step``; for each dimension ``i``, ``precond_<i>`` (the
statistic ``H^i``, ``n_i × n_i`` or a length-``n_i`` diagonal) and
``inv_precond_<i>`` (its cached root ``P^i``, the same shape); and
``momentum_buffer`` (``B``) when ``momentum != 0``.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, fraction, non_negative, positive
from .lbfgs import _positive_int
from .optimizer import Optimizer

__all__ = ["Shampoo", "shampoo_update", "inverse_root", "precondition"]


def _statistic(g, axis, diagonal):
    """``G_(axis) G_(axis)^T`` (or only its diagonal): ``g`` contracted with itself
    over every dimension but ``axis``."""
    others = tuple(j for j in range(g.ndim) if j != axis)
    if diagonal:
        return (g * g).sum(axis=others)
    return get_array_module(g).tensordot(g, g, axes=(others, others))


def inverse_root(h, order, eps):
    """``h^{-1/order}`` for a symmetric positive semi-definite ``h`` (or a diagonal).

    The eigenvalues (the entries, for a 1-d diagonal) are raised to at least
    ``eps`` first. The eigendecomposition runs in float64; the result has
    ``h``'s dtype.

    Parameters
    ----------
    h : ndarray
        An ``n × n`` symmetric matrix, or a length-``n`` diagonal.
    order : int
        The root: ``2k`` for a parameter of order ``k``.
    eps : float
        Floor of the eigenvalues.
    """
    xp = get_array_module(h)
    work = h if h.dtype == xp.float64 else h.astype(xp.float64)
    if h.ndim == 1:
        root = xp.maximum(work, eps) ** (-1.0 / order)
    else:
        sigma, q = xp.linalg.eigh(work)                      # h = Q diag(σ) Q^T
        root = (q * xp.maximum(sigma, eps) ** (-1.0 / order)) @ q.T
    return root.astype(h.dtype, copy=False)


def precondition(g, roots):
    """``G ×_1 P^1 ×_2 P^2 ... ×_k P^k`` (a 1-d ``P^i`` scales dimension ``i``).

    Each product contracts the leading dimension of the running result and puts
    the new one last, so after all ``k`` the dimensions are back in order.
    """
    xp = get_array_module(g)
    for root in roots:
        if root.ndim == 2:
            g = xp.tensordot(g, root, axes=([0], [1]))      # (G ×_i P)_j = Σ_m P_jm G_m
        else:
            g = xp.moveaxis(g, 0, -1) * root
    return g


def shampoo_update(param, grad, preconditioners, inv_roots, momentum_buffer=None, *, step,
                   lr, momentum=0.0, weight_decay=0.0, eps=1e-4, update_freq=1,
                   fresh_buffer=False):
    """One Shampoo step on raw arrays, in place (``param``, the statistics, roots, buffer).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only); a 0-d pair is
        treated as shape ``(1,)``.
    preconditioners : list of ndarray
        The statistics ``H^i`` (updated), one per dimension: ``n_i × n_i``, or a
        length-``n_i`` diagonal.
    inv_roots : list of ndarray
        The cached roots ``P^i`` (rewritten on update steps), shaped as ``H^i``.
    momentum_buffer : ndarray, optional
        ``B`` (updated); needed when ``momentum != 0``.
    step : int
        The 1-based step ``t``: roots are recomputed when ``(t - 1) % update_freq == 0``.
    lr, momentum, weight_decay, eps : float
        ``η, μ, λ, ε`` of the algorithm box.
    update_freq : int
        ``f``: steps between recomputations of the roots.
    fresh_buffer : bool
        True on the buffer's first step (``B_1 = G̃_1``).
    """
    xp = get_array_module(param)
    theta = param.reshape(1) if param.ndim == 0 else param
    g = grad.reshape(1) if grad.ndim == 0 else grad
    if weight_decay != 0:
        g = g + weight_decay * theta                             # G_t = ∇f + λW
    order = 2 * g.ndim
    refresh = (step - 1) % update_freq == 0
    for axis, (h, root) in enumerate(zip(preconditioners, inv_roots)):
        h += _statistic(g, axis, diagonal=h.ndim == 1)           # H^i += G_(i) G_(i)^T
        if refresh:
            xp.copyto(root, inverse_root(h, order, eps))         # P^i = (H^i)^{-1/(2k)}
    update = precondition(g, inv_roots)                          # G̃ = G ×_1 P^1 ... ×_k P^k
    if momentum != 0:
        b = momentum_buffer.reshape(update.shape)
        if fresh_buffer:
            xp.copyto(b, update)                                 # B_1 = G̃_1
        else:
            b *= momentum
            b += update                                          # B_t = μ B + G̃_t
        update = b
    update = update * lr
    theta -= update                                              # W_t = W - η B_t
    return param


class Shampoo(Optimizer):
    """Shampoo (Gupta, Koren & Singer, 2018); see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 0.1
        Learning rate ``η`` (alias ``learning_rate``).
    momentum : float, default 0
        Heavy-ball momentum ``0 <= μ < 1`` on the preconditioned gradient.
    weight_decay : float, default 0
        L2 penalty ``λ``, added to the gradient before the statistics.
    eps : float, default 1e-4
        ``ε > 0``: the statistics start at ``εI`` and eigenvalues are floored at
        ``ε`` before the root (alias ``epsilon``).
    update_freq : int, default 1
        Recompute the inverse roots every ``update_freq`` steps (cached in between).
    max_precond_dim : int, default 1024
        Dimensions longer than this get a diagonal preconditioner.

    Examples
    --------
    >>> opt = Shampoo(model.parameters(), lr=1e-3, momentum=0.9,   # doctest: +SKIP
    ...               weight_decay=1e-4, epsilon=1e-4, update_freq=1)
    """

    hyperparameters = {"lr": non_negative, "momentum": fraction,
                       "weight_decay": non_negative, "eps": positive,
                       "update_freq": _positive_int, "max_precond_dim": _positive_int}
    elementwise = False

    @accepts_aliases
    def __init__(self, params, lr=0.1, momentum=0.0, weight_decay=0.0, eps=1e-4,
                 update_freq=1, max_precond_dim=1024):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps,
                        update_freq=update_freq, max_precond_dim=max_precond_dim)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            eps = group["eps"]
            for i, n in enumerate(param.shape or (1,)):
                if n <= group["max_precond_dim"]:
                    h = xp.eye(n, dtype=param.dtype) * eps
                else:
                    h = xp.full(n, eps, dtype=param.dtype)
                state[f"precond_{i}"] = h
                state[f"inv_precond_{i}"] = xp.zeros_like(h)
        momentum = group["momentum"]
        fresh = momentum != 0 and "momentum_buffer" not in state
        if fresh:
            state["momentum_buffer"] = xp.empty_like(param)
        state["step"] += 1
        dims = range(max(param.ndim, 1))
        shampoo_update(param, grad, [state[f"precond_{i}"] for i in dims],
                       [state[f"inv_precond_{i}"] for i in dims],
                       state.get("momentum_buffer"), step=state["step"], lr=group["lr"],
                       momentum=momentum, weight_decay=group["weight_decay"],
                       eps=group["eps"], update_freq=group["update_freq"],
                       fresh_buffer=fresh)

    # ---- state_dict --------------------------------------------------------------
    def _state_shape(self, key, param):
        if key.startswith(("precond_", "inv_precond_")):
            return None                                  # checked in _load_value
        return super()._state_shape(key, param)

    def _load_value(self, key, value, param, index):
        if key.startswith(("precond_", "inv_precond_")):
            dims = param.shape or (1,)
            axis = key.rsplit("_", 1)[1]
            shape = tuple(getattr(value, "shape", ()))
            if not axis.isdigit() or int(axis) >= len(dims) or \
                    shape not in ((dims[int(axis)],) * 2, (dims[int(axis)],)):
                raise ValueError(f"state {key!r} of parameter {index} has shape {shape}, but "
                                 f"a parameter of shape {tuple(param.shape)} needs "
                                 f"preconditioners n_i x n_i (or length n_i) for "
                                 f"i < {len(dims)}")
        return super()._load_value(key, value, param, index)
