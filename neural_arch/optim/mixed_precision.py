"""MixedPrecisionOptimizer: an optimizer and a GradScaler behind one plain ``step``.

Seed 001 builds it by name::

    mp_optimizer = MixedPrecisionOptimizer(model=model, optimizer_type='adamw',
                                           learning_rate=1e-4, use_amp=True)

and the loop then reads::

    mp_optimizer.zero_grad()
    with mp_optimizer.autocast():
        loss = criterion(model(x), y)
    mp_optimizer.backward(loss)       # backward of the scaled loss
    mp_optimizer.step()               # unscale, skip on inf/NaN, update the scale

(``mp_optimizer.step(loss)`` does the last two in one call). It is the loop of
:mod:`neural_arch.amp` with the :class:`~neural_arch.amp.GradScaler` held inside:
the wrapped optimizer's update, its ``max_grad_norm`` clipping and its step count
only ever see unscaled gradients, and a skipped step leaves them untouched. With
``use_amp=False`` the same loop runs in float32: ``autocast()`` casts nothing and
``backward``/``step`` are the plain ones.

On NumPy float16 is slow but correct (no float16 BLAS); the speed-up is CuPy's.
"""
from __future__ import annotations

from ..amp import GradScaler, autocast
from ..core.tensor import Tensor
from ._meta import MetaOptimizer
from .factory import create_optimizer
from .optimizer import Optimizer

__all__ = ["MixedPrecisionOptimizer"]


class MixedPrecisionOptimizer(MetaOptimizer):
    """An optimizer built by name, with automatic mixed precision and loss scaling.

    Parameters
    ----------
    model : Module, iterable of Parameter, or parameter groups
        What to optimize (a model's parameters are named, as for
        :func:`~neural_arch.optim.factory.create_optimizer`).
    optimizer_type : str or Optimizer, default 'adamw'
        The optimizer's registry name (``'adam'``, ``'sgd'``, ``'lbfgs'``, ...; see
        :func:`~neural_arch.optim.factory.available_optimizers`), or an optimizer
        already built (then ``model``, ``learning_rate`` and ``**kwargs`` are not
        given).
    learning_rate : float, optional
        The learning rate (``lr=`` is accepted too); default: the optimizer's.
    use_amp : bool, default True
        Mixed precision on: :meth:`autocast` casts to ``dtype`` and the scaler
        scales the loss. Off: plain float32 training through the same calls.
    dtype : {'float16', 'bfloat16'}, default 'float16'
        The low dtype of :meth:`autocast` (bfloat16 only on a backend that has it).
    init_scale, growth_factor, backoff_factor, growth_interval
        The :class:`~neural_arch.amp.GradScaler` settings (PyTorch's defaults:
        ``2**16, 2.0, 0.5, 2000``).
    **kwargs
        The optimizer's other arguments (``weight_decay``, ``betas``,
        ``max_grad_norm``, ...), as for ``create_optimizer``.

    Attributes
    ----------
    base_optimizer : Optimizer
        The wrapped optimizer (also :attr:`optimizer`).
    scaler : GradScaler
        The loss scaler (disabled when ``use_amp=False``).
    skipped_steps : int
        Number of steps skipped because of inf/NaN gradients.

    Notes
    -----
    ``param_groups``, ``lr``, ``zero_grad`` and ``step_count`` are the wrapped
    optimizer's (so schedulers drive it); ``step_count`` counts the updates made,
    not the skipped ones. :meth:`state_dict` holds the optimizer's state and the
    scaler's under ``'mixed_precision'``.

    Examples
    --------
    >>> import neural_arch as na
    >>> from neural_arch.optim import MixedPrecisionOptimizer
    >>> model = na.nn.Linear(4, 2)
    >>> mp = MixedPrecisionOptimizer(model=model, optimizer_type='sgd', learning_rate=0.1)
    >>> with mp.autocast():
    ...     loss = model(na.ones((3, 4))).square().mean()
    >>> mp.step(loss)                      # backward of the scaled loss, then the update
    >>> mp.step_count, mp.skipped_steps, str(model.weight.dtype)
    (1, 0, 'float32')
    """

    def __init__(self, model=None, optimizer_type="adamw", learning_rate=None, use_amp=True,
                 *, dtype="float16", init_scale=2.0 ** 16, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, **kwargs):
        if not isinstance(use_amp, bool):
            raise TypeError(f"MixedPrecisionOptimizer: use_amp must be True or False, got "
                            f"{use_amp!r}")
        self._autocast = autocast(dtype, enabled=use_amp)      # validates dtype first
        scaler = GradScaler(init_scale=init_scale, growth_factor=growth_factor,
                            backoff_factor=backoff_factor, growth_interval=growth_interval,
                            enabled=use_amp)
        super().__init__(_build(model, optimizer_type, learning_rate, kwargs))
        self.use_amp = use_amp
        self.scaler = scaler
        self.skipped_steps = 0
        self._seen_backwards = 0

    @property
    def optimizer(self) -> Optimizer:
        """The wrapped optimizer (the same object as :attr:`base_optimizer`)."""
        return self.base_optimizer

    @property
    def state_key(self) -> str:
        return "mixed_precision"

    def autocast(self):
        """The :class:`~neural_arch.amp.autocast` context for the forward pass."""
        return self._autocast

    def scale(self, loss):
        """The loss times the current scale (the loss itself with ``use_amp=False``)."""
        return self.scaler.scale(loss)

    def backward(self, loss, **kwargs):
        """Backward of the scaled loss (``kwargs`` go to ``Tensor.backward``)."""
        if not isinstance(loss, Tensor):
            raise TypeError(f"MixedPrecisionOptimizer.backward expects the loss Tensor, got "
                            f"{type(loss).__name__}")
        self.scaler.scale(loss).backward(**kwargs)

    def get_scale(self) -> float:
        """The scaler's current scale (1.0 with ``use_amp=False``)."""
        return self.scaler.get_scale()

    def step(self, loss_or_closure=None):
        """One update: unscale, step unless a gradient overflowed, adapt the scale.

        Parameters
        ----------
        loss_or_closure : Tensor or callable, optional
            None: the gradients are already there (from :meth:`backward`). A loss
            Tensor: run :meth:`backward` on it first. A closure (for LBFGS, or SAM
            doing both passes): it clears the gradients, computes the loss (under
            :meth:`autocast`), calls ``mp.backward(loss)`` and returns the loss.

        Returns
        -------
        The wrapped optimizer's return value (the closure's loss for closure
        optimizers), or None when the step was skipped.

        Raises
        ------
        RuntimeError
            With mixed precision on and no argument: no :meth:`backward` since the
            last step (a plain ``loss.backward()`` gives unscaled gradients, which
            the scaler would divide by the scale).
        """
        scaler = self.scaler
        if isinstance(loss_or_closure, Tensor):
            self.backward(loss_or_closure)
            loss_or_closure = None
        if loss_or_closure is None:
            if self.use_amp and scaler._scaled_backwards == self._seen_backwards:
                raise RuntimeError(
                    "MixedPrecisionOptimizer.step(): no scaled backward since the last step; "
                    "compute the gradients with mp.backward(loss) (or pass the loss: "
                    "mp.step(loss)) instead of loss.backward()")
            out = scaler.step(self.base_optimizer)
        elif callable(loss_or_closure):
            out = scaler.step(self.base_optimizer, loss_or_closure)
        else:
            raise TypeError(f"MixedPrecisionOptimizer.step expects nothing, a loss Tensor or "
                            f"a closure, got {type(loss_or_closure).__name__}")
        if self.use_amp:
            skipped = bool(scaler._per_optimizer[self.base_optimizer]["found_inf"])
            self.skipped_steps += skipped
            scaler.update()
            self._seen_backwards = scaler._scaled_backwards
        return out

    # ---- state_dict: the scaler's state beside the optimizer's ------------------------
    def _extra_state(self):
        return {"scaler": self.scaler.state_dict(), "skipped_steps": self.skipped_steps}

    def _check_extra(self, saved):
        scaler = saved.get("scaler", {})
        probe = GradScaler(enabled=self.scaler.is_enabled())
        probe.load_state_dict(scaler)                  # raises on anything invalid
        skipped = saved.get("skipped_steps", 0)
        if isinstance(skipped, bool) or not isinstance(skipped, int) or skipped < 0:
            raise ValueError(f"'skipped_steps' must be a non-negative integer, got {skipped!r}")
        return scaler, skipped

    def _commit_extra(self, prepared):
        scaler, self.skipped_steps = prepared
        self.scaler.load_state_dict(scaler)

    def _repr_settings(self):
        return {"use_amp": self.use_amp, "dtype": None if self._autocast.dtype is None
                else self._autocast.dtype.name, "scale": self.scaler.get_scale()}


def _build(model, optimizer_type, learning_rate, kwargs):
    """The wrapped optimizer: built by registry name, or given built."""
    if isinstance(optimizer_type, Optimizer):
        given = [k for k, v in (("model", model), ("learning_rate", learning_rate))
                 if v is not None] + sorted(kwargs)
        if given:
            raise TypeError(f"MixedPrecisionOptimizer: optimizer_type is an already built "
                            f"{type(optimizer_type).__name__}, so {', '.join(given)} cannot be "
                            f"given too; set them when building it")
        return optimizer_type
    if not isinstance(optimizer_type, str):
        raise TypeError(f"MixedPrecisionOptimizer: optimizer_type must be an optimizer name "
                        f"(such as 'adamw') or a built optimizer, got {optimizer_type!r}")
    if model is None:
        raise TypeError("MixedPrecisionOptimizer needs model= (a model, or its parameters)")
    return create_optimizer(model=model, optimizer_type=optimizer_type,
                            learning_rate=learning_rate, **kwargs)
