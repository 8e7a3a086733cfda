"""Module: the base class of layers and models, and its containers."""
from __future__ import annotations

from collections import OrderedDict

from .. import backend
from ..core.grad_mode import no_grad
from ..core.tensor import Parameter, Tensor

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Parameter"]


class Module:
    """Base class of every layer and model.

    Parameters, buffers and sub-modules are found by attribute assignment, as in
    PyTorch::

        class MLP(na.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = na.nn.Linear(4, 8)      # a sub-module
                self.scale = na.nn.Parameter(na.ones(8))   # a parameter

            def forward(self, x):
                return self.fc1(x) * self.scale

    Calling the module calls :meth:`forward`.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration by attribute assignment -----------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called; "
                                 "call super().__init__() first in your __init__")
        params, bufs, mods = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            _discard(name, bufs, mods, self.__dict__)
            params[name] = value
        elif isinstance(value, Module):
            _discard(name, params, bufs, self.__dict__)
            mods[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r}; "
                                "expected a Parameter or None")
            params[name] = None
        elif name in bufs:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"buffer {name!r} must be a Tensor or None, "
                                f"got {type(value).__name__}")
            bufs[name] = value
        elif name in mods:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to sub-module "
                                f"{name!r}; expected a Module or None")
            mods[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            r = d.get(reg)
            if r is not None and name in r:
                return r[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for reg in (self._parameters, self._buffers, self._modules):
            if name in reg:
                del reg[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        """Add a parameter (or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter expects a Parameter or None, "
                            f"got {type(param).__name__}")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a buffer: state that is saved in the state_dict but not trained."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._buffers[name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def add_module(self, name: str, module) -> None:
        """Add a sub-module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name!r} is not a Module: {type(module).__name__}")
        self._modules[name] = module

    # -- calling ------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal ------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo=None):
        """Yield ``(name, module)`` for this module and every sub-module, once each."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(prefix + ("." if prefix else "") + name, memo)

    def modules(self):
        """Yield this module and every sub-module."""
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """Yield ``(name, module)`` for the direct sub-modules."""
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        """Yield the direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """Yield ``(dotted name, Parameter)``, each parameter once."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (mname + "." if mname else "") + name, p

    def parameters(self, recurse: bool = True):
        """Yield every Parameter (the argument optimizers take)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        """Yield ``(dotted name, Tensor)`` for every buffer."""
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for name, b in m._buffers.items():
                if b is not None:
                    yield (mname + "." if mname else "") + name, b

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and gradients ----------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (dropout active, batch norm updates running stats)."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """Set evaluation mode: the same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor._make(p.grad.data * 0)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every sub-module (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- devices and dtypes -----------------------------------------------------------------
    def to(self, device=None, dtype=None) -> "Module":
        """Move (and/or cast) every parameter and buffer in place; returns self."""
        with no_grad():
            for m in self.modules():
                for reg in (m._parameters, m._buffers):
                    for k, t in reg.items():
                        if t is None:
                            continue
                        arr = t.data
                        if dtype is not None and t.data.dtype.kind == "f":
                            arr = arr.astype(dtype)
                        if device is not None:
                            arr = backend.to_device(arr, device)
                        t.data = arr
                        if t.grad is not None:
                            g = t.grad.data
                            if dtype is not None:
                                g = g.astype(dtype)
                            if device is not None:
                                g = backend.to_device(g, device)
                            t.grad = Tensor._make(g)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Module":
        return self.to(f"cuda:{index}")

    def float(self) -> "Module":
        return self.to(dtype="float32")

    def double(self) -> "Module":
        return self.to(dtype="float64")

    # -- state ----------------------------------------------------------------------------
    def state_dict(self, prefix: str = ""):
        """Return an ordered dict ``name -> array`` of parameters and persistent buffers.

        Keys follow PyTorch's naming (``fc1.weight``, ``bn.running_mean``), so arrays
        from a torch model's state_dict load directly. The arrays are the live data
        (not copies), as in PyTorch.
        """
        out = OrderedDict()
        for mname, m in self.named_modules(prefix):
            skip = m.__dict__.get("_non_persistent", ())
            for reg in (m._parameters, m._buffers):
                for k, t in reg.items():
                    if t is not None and k not in skip:
                        out[(mname + "." if mname else "") + k] = t.data
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy arrays from ``state_dict`` into the parameters and buffers.

        With ``strict=True`` (default) missing or unexpected keys are an error that
        lists them; a shape mismatch is always an error. Nothing is changed when an
        error is raised. Returns ``(missing_keys, unexpected_keys)``.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and (missing or unexpected):
            if missing:
                problems.append(f"missing keys: {missing}")
            if unexpected:
                problems.append(f"unexpected keys: {unexpected}")
        new = {}
        for k, cur in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            v = v.data if isinstance(v, Tensor) else v
            shape = tuple(getattr(v, "shape", ()))
            if shape != tuple(cur.shape):
                problems.append(f"shape mismatch for {k!r}: expected {tuple(cur.shape)}, "
                                f"got {shape}")
                continue
            new[k] = v
        if problems:
            raise ValueError("error loading state_dict into "
                             f"{type(self).__name__}: " + "; ".join(problems))
        tensors = dict(self._named_state_tensors())
        for k, v in new.items():
            t = tensors[k]
            xp = backend.get_array_module(t.data)
            arr = backend.to_device(backend.asnumpy(v) if xp is not backend.get_array_module(v)
                                    else v, t.device)
            t.data = xp.array(arr, dtype=t.data.dtype, copy=True)
        return missing, unexpected

    def _named_state_tensors(self):
        for mname, m in self.named_modules():
            for reg in (m._parameters, m._buffers):
                for k, t in reg.items():
                    if t is not None:
                        yield (mname + "." if mname else "") + k, t

    # -- display ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """Extra text for ``repr`` (layer settings); override in layers."""
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        extra = self.extra_repr()
        head = type(self).__name__ + "("
        if not lines:
            return head + extra + ")"
        body = ([extra] if extra else []) + lines
        return head + "\n  " + "\n  ".join(body) + "\n)"


def _discard(name, *registries):
    for reg in registries:
        reg.pop(name, None)


class Sequential(Module):
    """Modules applied one after another.

    Both ``Sequential(a, b, c)`` and ``Sequential([a, b, c])`` work, as does an
    ``OrderedDict`` of named modules.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential item {i} is not a Module: "
                                    f"{type(m).__name__}")
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(mods[i])
        return mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of sub-modules whose parameters are registered."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module) -> "ModuleList":
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return ModuleList(mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of named sub-modules whose parameters are registered."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            for k, m in dict(modules).items():
                self[k] = m

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __getitem__(self, key):
        return self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
