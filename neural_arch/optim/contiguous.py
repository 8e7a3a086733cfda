"""Contiguous mode: one flat buffer per parameter group, one update per group.

With ``contiguous=True`` an optimizer lays the parameters of each group (split by
dtype and device) end to end in one 1-D array, and makes every ``p.data`` a view
into it. Gradients are gathered into a second flat array (one copy per tensor,
since the engine writes a new ``.grad`` on every backward), and state arrays are
views into flat state buffers. An *elementwise* optimizer (SGD, Adam, ...) then
runs its kernel once over the whole flat array: a handful of vectorised
operations per step instead of a handful per tensor, with the same numbers.

The per-parameter picture stays intact: ``optimizer.state[p]['exp_avg']`` is an
array of ``p``'s shape (a view), so ``state_dict`` is the same as without
contiguous mode. When the fast path cannot apply (a parameter without a
gradient, parameters whose state drifted apart, an optimizer that is not
elementwise) the update runs per tensor on the views, which is equally correct.
A group of large tensors (128 KiB each on average, on the CPU) is also
updated per tensor on the views: for it the copy of the gradients into the
flat buffer would cost more than the per-tensor calls it saves.

Code that replaces ``p.data`` by a new array (rather than writing into it) is
noticed at the next step: the new values are copied into the flat buffer and
``p.data`` becomes a view again; a change of shape, dtype or device re-flattens
the group.
"""
from __future__ import annotations

from operator import is_, itemgetter, methodcaller

from ..backend import device_of, get_array_module
from .optimizer import _grad_array, _is_array

__all__ = ["flatten_parameters", "FlatBucket", "FlatGroup", "PER_TENSOR_BYTES"]

#: Mean tensor size (bytes) from which a bucket on the CPU is updated tensor by
#: tensor instead of gathering its gradients (see :meth:`FlatBucket.step`). Measured
#: with float32 tensors, one thread: gathering and per-tensor calls break even near
#: 16K elements for SGD with momentum and 32K for Adam; at 100K elements per tensor
#: the per-tensor update is 20-25% faster.
PER_TENSOR_BYTES = 1 << 17


def flatten_parameters(params):
    """Lay parameters end to end in flat buffers, one per (dtype, device).

    Each parameter's ``.data`` is replaced by a view into its buffer (values
    copied), so writing into the buffer updates the parameters.

    Parameters
    ----------
    params : list of Parameter

    Returns
    -------
    list of FlatBucket
        In order of first appearance of each (dtype, device).
    """
    groups = {}
    for p in params:
        groups.setdefault((p.data.dtype.str, device_of(p.data)), []).append(p)
    return [FlatBucket(ps) for ps in groups.values()]


class FlatBucket:
    """Parameters of one dtype and device as views into one flat array.

    Attributes
    ----------
    params : list of Parameter
    param, grad, scratch : 1-D arrays
        The flat parameters, the gathered gradients and a scratch buffer for the
        kernels.
    large_tensors : bool
        True when the tensors average :data:`PER_TENSOR_BYTES` or more (on the
        CPU): :meth:`step` then updates them one by one, without gathering.
    param_views : list of arrays
        ``param_views[i]`` is ``params[i].data``.
    """

    def __init__(self, params):
        self.params = list(params)
        self.shapes = [p.data.shape for p in self.params]
        self.bounds = []
        start = 0
        for p in self.params:
            self.bounds.append((start, start + p.data.size))
            start += p.data.size
        xp = get_array_module(self.params[0].data)
        self.param = xp.concatenate([p.data.reshape(-1) for p in self.params])
        self.param_views = self.views(self.param)
        for p, v in zip(self.params, self.param_views):
            p.data = v
        self.grad = xp.empty_like(self.param)
        self.large_tensors = (device_of(self.param) == "cpu" and self.param.nbytes
                              >= PER_TENSOR_BYTES * len(self.params))
        self.grad_views = self.views(self.grad)
        self.scratch = xp.empty_like(self.param)
        self.state_buffers = {}      # state key -> flat array
        self.state_views = {}        # state key -> per-parameter views of it

    def views(self, flat):
        """Per-parameter views (each of its parameter's shape) into a flat array."""
        return [flat[a:b].reshape(shape) for (a, b), shape in zip(self.bounds, self.shapes)]

    def rebind(self):
        """Re-attach parameters whose ``.data`` was replaced; False if one changed kind."""
        for i, (p, v) in enumerate(zip(self.params, self.param_views)):
            a = p.data
            if a is v:
                continue
            if a.shape != v.shape or a.dtype != v.dtype or device_of(a) != device_of(v):
                return False
            v[...] = a
            p.data = v
        return True

    def gather_grads(self):
        """Copy every gradient into the flat ``grad``; False if one is missing."""
        copyto = get_array_module(self.grad).copyto
        for p, gv in zip(self.params, self.grad_views):
            g = p.grad
            if g is None:
                return False
            a = _grad_array(p, g)
            if a is not gv:
                copyto(gv, a)
        return True

    def pack_state(self, optimizer):
        """The flat state of this bucket, or None when the parameters' states differ.

        Per-parameter state arrays that are not yet views into a flat state buffer
        are copied into one and replaced by views (so after a successful pack,
        ``state[p][key]`` is always a view). Scalars (``step``) must agree.
        """
        # This runs on every step, over every parameter: the loops over the states
        # are written with map() and operator functions, which run at C speed (with
        # 1,000 parameters, generator expressions took longer than the update itself).
        states = [optimizer.state[p] for p in self.params]
        first = states[0]
        if not first:
            return {} if not any(states) else None
        keys = first.keys()
        if not all(map(keys.__eq__, map(methodcaller("keys"), states))):
            return None
        flat, adopt = {}, []
        for k in keys:
            values = list(map(itemgetter(k), states))
            v0 = values[0]
            if _is_array(v0):
                views = self.state_views.get(k)
                if views is not None and all(map(is_, values, views)):
                    flat[k] = self.state_buffers[k]
                    continue
                if any(not _is_array(v) or v.shape != shape or v.dtype != self.param.dtype
                       for v, shape in zip(values, self.shapes)):
                    return None
                adopt.append(k)
            else:
                if any(map(_is_array, values)) or values.count(v0) != len(values):
                    return None
                flat[k] = v0
        for k in adopt:
            buf = self.state_buffers.get(k)
            if buf is None:
                buf = get_array_module(self.param).empty_like(self.param)
            views = self.state_views.get(k) or self.views(buf)
            for s, v in zip(states, views):
                v[...] = s[k]
                s[k] = v
            self.state_buffers[k] = buf
            self.state_views[k] = views
            flat[k] = buf
        return flat

    def scatter_state(self, optimizer, flat):
        """Hand the flat state after an update back to the parameters (views, scalars)."""
        states = [optimizer.state[p] for p in self.params]
        for k, v in flat.items():
            if _is_array(v):
                if v is self.state_buffers.get(k):
                    continue
                if v.shape != self.param.shape:
                    raise RuntimeError(
                        f"{type(optimizer).__name__} is marked elementwise but made state "
                        f"{k!r} of shape {tuple(v.shape)} for a flat group of "
                        f"{self.param.size} elements; set elementwise = False on it")
                views = self.views(v)
                self.state_buffers[k] = v
                self.state_views[k] = views
                for s, view in zip(states, views):
                    s[k] = view
            else:
                for s in states:
                    s[k] = v

    def step(self, optimizer, group):
        """Update the bucket: once over the flat arrays when possible, else per tensor.

        Buckets of large tensors (on average :data:`PER_TENSOR_BYTES` or more)
        are updated per tensor, on the views: there a kernel call per tensor
        costs little next to the arithmetic, while gathering the gradients into
        the flat buffer would cost a copy of them all every step.
        """
        if (optimizer.elementwise and not self.large_tensors and self.gather_grads()):
            flat = self.pack_state(optimizer)
            if flat is not None:
                optimizer._update(self.param, self.grad, flat, group)
                self.scatter_state(optimizer, flat)
                return
        for p in self.params:
            if p.grad is not None:
                optimizer._update(p.data, _grad_array(p, p.grad), optimizer.state[p], group)
        self.pack_state(optimizer)


class FlatGroup:
    """The flat buckets of one parameter group of ``optimizer``."""

    def __init__(self, params, optimizer):
        self.params = list(params)
        self.optimizer = optimizer
        self._flatten()

    def _flatten(self):
        scratch = self.optimizer._scratch_buffers
        for b in getattr(self, "buckets", ()):
            scratch.pop(id(b.param), None)
        self.buckets = flatten_parameters(self.params)
        for b in self.buckets:
            scratch[id(b.param)] = b.scratch
        self.pack_state()

    def pack_state(self):
        """Turn the parameters' state arrays into views of flat buffers where they agree."""
        for b in self.buckets:
            b.pack_state(self.optimizer)

    def step(self, group):
        if not all(b.rebind() for b in self.buckets):
            self._flatten()
        for b in self.buckets:
            b.step(self.optimizer, group)
