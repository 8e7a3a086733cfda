"""Recurrent layers: RNN, LSTM, GRU and their single-step cells.

Constructor arguments, parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``,
...), gate order and numerics are PyTorch's, so a torch model's state_dict loads
directly and gives the same outputs.

How a layer runs: the input projection ``x W_ih^T + b_ih`` of every time step is
one matmul over the whole sequence; only the recurrent part ``h W_hh^T + b_hh``
and the gate arithmetic run in a Python loop over time steps. Inside the loop
the tensors keep a time axis of length one, ``(1, N, H)``, so the per-step
outputs join into the ``(T, N, H)`` output with a single concatenation.

Gate equations (``*`` is the elementwise product, ``sigma`` the logistic sigmoid):

* RNN:  ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or ``relu``)
* LSTM: ``i, f, g, o = sigma(.), sigma(.), tanh(.), sigma(.)`` of
  ``W_ih x + b_ih + W_hh h + b_hh`` split in four (in that order);
  ``c' = f * c + i * g``, ``h' = o * tanh(c')`` (then ``h' W_hr^T`` with ``proj_size``)
* GRU:  ``r, z = sigma(W_ir x + b_ir + W_hr h + b_hr), sigma(W_iz x + b_iz + W_hz h + b_hz)``;
  ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; ``h' = (1 - z) * n + z * h``
"""
from __future__ import annotations

import math
import numbers
import warnings

from .. import functional as F
from ..core import creation
from ..core.tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

# Number of gate blocks stacked in weight_ih / weight_hh, per mode.
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ==== one time step ======================================================================
# Each step takes the input's share of the pre-activations ``xg`` (already
# ``x W_ih^T + b_ih``) and the previous state, and returns the new state. They
# work on any leading shape, so the layers ((1, N, .) per step) and the cells
# ((N, .) or (.,)) share them.

def _rnn_step(xg, h, w_hh, b_hh, act):
    return act(xg + F.linear(h, w_hh, b_hh))


def _lstm_step(xg, h, c, w_hh, b_hh, w_hr=None):
    gates = xg + F.linear(h, w_hh, b_hh)
    i, f, g, o = F.chunk(gates, 4, axis=-1)
    c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    h = F.sigmoid(o) * F.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)
    return h, c


def _gru_step(xg, h, w_hh, b_hh):
    xr, xz, xn = F.chunk(xg, 3, axis=-1)
    hr, hz, hn = F.chunk(F.linear(h, w_hh, b_hh), 3, axis=-1)
    r = F.sigmoid(xr + hr)
    z = F.sigmoid(xz + hz)
    n = F.tanh(xn + r * hn)        # b_hn sits inside r * (...), as in PyTorch
    return n + z * (h - n)         # = (1 - z) * n + z * h


# ==== argument checks =====================================================================

def _positive_int(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}")
    return int(value)


def _bool(value, what, owner):
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {what} must be a bool, got {value!r}")
    return value


def _shape_str(shape):
    return str(tuple(int(n) for n in shape))


def _check_input(x, owner, input_size, weight, ndims, kinds):
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in ndims:
        raise ValueError(f"{owner}: expected a {kinds} input, got shape {_shape_str(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(f"{owner}: the input's last dim must equal input_size={input_size}; "
                         f"got input shape {_shape_str(x.shape)}")
    if x.dtype != weight.dtype:
        raise TypeError(f"{owner}: the input has dtype {x.dtype} but the parameters have "
                        f"{weight.dtype}; cast one of them (e.g. module.to(dtype=...))")


def _check_state(h, expected, owner, what):
    if not isinstance(h, Tensor):
        raise TypeError(f"{owner}: {what} must be a Tensor, got {type(h).__name__}")
    if tuple(h.shape) != expected:
        raise ValueError(f"{owner}: expected {what} of shape {_shape_str(expected)}, "
                         f"got {_shape_str(h.shape)}")


# ==== multi-layer recurrent layers ==========================================================

class RNNBase(Module):
    """The shared body of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Parameters are registered in PyTorch's order: for each layer, for each
    direction, ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` (and
    ``weight_hr`` for an LSTM with ``proj_size``), with the suffix ``_l{k}`` and
    ``_reverse`` for the backward direction.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 device=None, dtype=None):
        super().__init__()
        owner = "RNN" if mode.startswith("RNN") else mode
        self.mode = mode
        self.input_size = _positive_int(input_size, "input_size", owner)
        self.hidden_size = _positive_int(hidden_size, "hidden_size", owner)
        self.num_layers = _positive_int(num_layers, "num_layers", owner)
        self.bias = _bool(bias, "bias", owner)
        self.batch_first = _bool(batch_first, "batch_first", owner)
        self.bidirectional = _bool(bidirectional, "bidirectional", owner)
        if (isinstance(dropout, bool) or not isinstance(dropout, numbers.Real)
                or not 0 <= dropout <= 1):
            raise ValueError(f"{owner}: dropout must be a probability in [0, 1], "
                             f"got {dropout!r}")
        self.dropout = float(dropout)
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{owner}: dropout={dropout} acts between layers, so it has no "
                          "effect with num_layers=1", stacklevel=3)
        if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral) \
                or proj_size < 0:
            raise ValueError(f"{owner}: proj_size must be a non-negative int, "
                             f"got {proj_size!r}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{owner}: proj_size is supported only by LSTM")
        if proj_size >= hidden_size:
            raise ValueError(f"{owner}: proj_size ({proj_size}) must be smaller than "
                             f"hidden_size ({hidden_size})")
        self.proj_size = int(proj_size)

        d = 2 if self.bidirectional else 1
        gate_size = _GATES[mode] * self.hidden_size
        h_out = self.proj_size or self.hidden_size
        self._suffixes = []         # per (layer, direction): "_l{k}" or "_l{k}_reverse"
        self._names = []            # per (layer, direction): the parameter names
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else h_out * d
            for direction in range(d):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (gate_size, layer_in)),
                          ("weight_hh", (gate_size, h_out))]
                if self.bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if self.proj_size:
                    shapes.append(("weight_hr", (self.proj_size, self.hidden_size)))
                for name, shape in shapes:
                    setattr(self, name + sfx,
                            Parameter(creation.empty(shape, dtype=dtype, device=device)))
                self._suffixes.append(sfx)
                self._names.append(tuple(name + sfx for name, _ in shapes))
        self.reset_parameters()

    @property
    def _owner(self):
        return type(self).__name__

    def reset_parameters(self):
        """Draw every parameter from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self):
        """Does nothing: accepted so that code written for torch runs unchanged."""

    @property
    def all_weights(self):
        """The parameters as a list (per layer and direction) of lists, as in PyTorch."""
        return [[getattr(self, n) for n in names] for names in self._names]

    def _weights(self, index):
        """``(w_ih, b_ih, w_hh, b_hh, w_hr)`` of one (layer, direction); absent ones None."""
        p, sfx = self._parameters, self._suffixes[index]
        return (p["weight_ih" + sfx], p.get("bias_ih" + sfx), p["weight_hh" + sfx],
                p.get("bias_hh" + sfx), p.get("weight_hr" + sfx))

    def forward(self, input, hx=None):
        """Run the layer over a whole sequence.

        Parameters
        ----------
        input : Tensor
            ``(T, N, input_size)``, or ``(N, T, input_size)`` with
            ``batch_first=True``, or unbatched ``(T, input_size)``.
        hx : Tensor or tuple of Tensor, optional
            The initial state (zeros when None): ``h_0`` of shape
            ``(D * num_layers, N, H_out)`` (``(D * num_layers, H_out)`` unbatched),
            where ``D`` is 2 when bidirectional and ``H_out`` is ``proj_size`` or
            ``hidden_size``; for an LSTM the pair ``(h_0, c_0)``, with ``c_0`` of
            size ``hidden_size`` in the last dim.

        Returns
        -------
        output : Tensor
            The last layer's hidden state at every step: ``(T, N, D * H_out)``
            (batch first, or unbatched, like the input).
        h_n : Tensor or tuple of Tensor
            The final state of every layer and direction, shaped like ``hx``; for
            an LSTM the pair ``(h_n, c_n)``.
        """
        owner = self._owner
        w0 = self._parameters["weight_ih_l0"]
        _check_input(input, owner, self.input_size, w0, (2, 3),
                     "2-d (unbatched) or 3-d (batched)")
        batched = input.ndim == 3
        x = input
        if not batched:
            x = F.unsqueeze(x, 1)
        elif self.batch_first:
            x = F.swapaxes(x, 0, 1)
        steps, n = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError(f"{owner}: the input sequence is empty (length 0)")

        d = 2 if self.bidirectional else 1
        h_out = self.proj_size or self.hidden_size
        h_shape = (self.num_layers * d, n, h_out)
        c_shape = (self.num_layers * d, n, self.hidden_size)
        lstm = self.mode == "LSTM"
        h0 = c0 = None
        if hx is not None:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{owner}: hx must be a pair (h_0, c_0), "
                                    f"got {type(hx).__name__}")
                h0, c0 = hx
            else:
                if isinstance(hx, (tuple, list)):
                    raise TypeError(f"{owner}: hx must be one Tensor h_0, not a "
                                    f"{type(hx).__name__}")
                h0 = hx
            states = [(h0, "h_0", h_shape)] + ([(c0, "c_0", c_shape)] if lstm else [])
            for h, what, shape in states:
                _check_state(h, shape if batched else shape[:1] + shape[2:], owner, what)
            if not batched:
                h0 = F.unsqueeze(h0, 1)
                c0 = F.unsqueeze(c0, 1) if lstm else None
            h0 = F.split(h0, 1, axis=0)
            c0 = F.split(c0, 1, axis=0) if lstm else None

        act = F.relu if self.mode == "RNN_RELU" else F.tanh
        final_h, final_c = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, True)
            outs = []
            for direction in range(d):
                k = layer * d + direction
                w_ih, b_ih, w_hh, b_hh, w_hr = self._weights(k)
                # One matmul projects every time step; the loop only adds h W_hh^T.
                xgs = F.split(F.linear(x, w_ih, b_ih), 1, axis=0)
                order = range(steps - 1, -1, -1) if direction else range(steps)
                h = h0[k] if h0 is not None else \
                    creation.zeros((1, n, h_out), dtype=x.dtype, device=x.device)
                if lstm:
                    c = c0[k] if c0 is not None else \
                        creation.zeros((1, n, self.hidden_size), dtype=x.dtype,
                                       device=x.device)
                hs = [None] * steps
                for t in order:
                    if lstm:
                        h, c = _lstm_step(xgs[t], h, c, w_hh, b_hh, w_hr)
                    elif self.mode == "GRU":
                        h = _gru_step(xgs[t], h, w_hh, b_hh)
                    else:
                        h = _rnn_step(xgs[t], h, w_hh, b_hh, act)
                    hs[t] = h
                outs.append(F.concat(hs, axis=0) if steps > 1 else hs[0])
                final_h.append(h)
                if lstm:
                    final_c.append(c)
            x = outs[0] if d == 1 else F.concat(outs, axis=-1)

        output = x
        h_n = F.concat(final_h, axis=0) if len(final_h) > 1 else final_h[0]
        c_n = (F.concat(final_c, axis=0) if len(final_c) > 1 else final_c[0]) if lstm else None
        if not batched:
            output = F.squeeze(output, 1)
            h_n = F.squeeze(h_n, 1)
            c_n = F.squeeze(c_n, 1) if lstm else None
        elif self.batch_first:
            output = F.swapaxes(output, 0, 1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman recurrent layer, as ``torch.nn.RNN``.

    ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` with ``act`` tanh or
    relu. ``rnn(input, h_0=None)`` returns ``(output, h_n)``; see
    :meth:`RNNBase.forward` for the shapes.

    Parameters
    ----------
    input_size : int
        Features per time step of the input.
    hidden_size : int
        Features of the hidden state.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads the output of layer ``k - 1``.
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
        The activation ``act``.
    bias : bool, default True
        Learn ``bias_ih`` and ``bias_hh``.
    batch_first : bool, default False
        Input and output are ``(N, T, features)`` instead of ``(T, N, features)``
        (the states ``h_0``/``h_n`` keep the batch in dim 1 either way).
    dropout : float, default 0
        Dropout probability on the outputs of every layer but the last, in
        training mode only.
    bidirectional : bool, default False
        Also run every layer from the last step to the first; the two directions'
        outputs are concatenated along the feature dim.
    device, dtype : optional
        Where the parameters live and their dtype.

    Examples
    --------
    >>> rnn = na.nn.RNN(4, 8, num_layers=2)
    >>> out, h_n = rnn(na.randn(5, 3, 4))
    >>> out.shape, h_n.shape
    ((5, 3, 8), (2, 3, 8))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', "
                             f"got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory layer, as ``torch.nn.LSTM``.

    Gates in PyTorch's order input, forget, cell, output (the rows of
    ``weight_ih``/``weight_hh`` in four blocks). ``lstm(input, (h_0, c_0))``
    (the pair defaults to zeros) returns ``(output, (h_n, c_n))``; see
    :meth:`RNNBase.forward` for the shapes.

    Parameters
    ----------
    input_size : int
        Features per time step of the input.
    hidden_size : int
        Features of the hidden state.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads the output of layer ``k - 1``.
    bias : bool, default True
        Learn ``bias_ih`` and ``bias_hh``.
    batch_first : bool, default False
        Input and output are ``(N, T, features)`` instead of ``(T, N, features)``
        (the states ``h_0``/``h_n`` keep the batch in dim 1 either way).
    dropout : float, default 0
        Dropout probability on the outputs of every layer but the last, in
        training mode only.
    bidirectional : bool, default False
        Also run every layer from the last step to the first; the two directions'
        outputs are concatenated along the feature dim.
    proj_size : int, default 0
        When positive, the hidden state is projected to this size by
        ``weight_hr`` (shape ``(proj_size, hidden_size)``) at every step.
    device, dtype : optional
        Where the parameters live and their dtype.

    Examples
    --------
    >>> lstm = na.nn.LSTM(4, 8, num_layers=2, batch_first=True)
    >>> out, (h_n, c_n) = lstm(na.randn(3, 5, 4))
    >>> out.shape, h_n.shape, c_n.shape
    ((3, 5, 8), (2, 3, 8), (2, 3, 8))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit layer, as ``torch.nn.GRU``.

    Gates in PyTorch's order reset, update, new; the new gate is
    ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))`` and
    ``h' = (1 - z) * n + z * h``. ``gru(input, h_0=None)`` returns
    ``(output, h_n)``; see :meth:`RNNBase.forward` for the shapes.

    Parameters
    ----------
    input_size : int
        Features per time step of the input.
    hidden_size : int
        Features of the hidden state.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads the output of layer ``k - 1``.
    bias : bool, default True
        Learn ``bias_ih`` and ``bias_hh``.
    batch_first : bool, default False
        Input and output are ``(N, T, features)`` instead of ``(T, N, features)``
        (the states ``h_0``/``h_n`` keep the batch in dim 1 either way).
    dropout : float, default 0
        Dropout probability on the outputs of every layer but the last, in
        training mode only.
    bidirectional : bool, default False
        Also run every layer from the last step to the first; the two directions'
        outputs are concatenated along the feature dim.
    device, dtype : optional
        Where the parameters live and their dtype.

    Examples
    --------
    >>> gru = na.nn.GRU(4, 8)
    >>> out, h_n = gru(na.randn(5, 4))       # unbatched
    >>> out.shape, h_n.shape
    ((5, 8), (1, 8))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


# ==== single-step cells ======================================================================

class RNNCellBase(Module):
    """The shared body of the cells: parameters ``weight_ih``, ``weight_hh``,
    ``bias_ih``, ``bias_hh`` (PyTorch's names and initialisation)."""

    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        owner = type(self).__name__
        self.input_size = _positive_int(input_size, "input_size", owner)
        self.hidden_size = _positive_int(hidden_size, "hidden_size", owner)
        self.bias = _bool(bias, "bias", owner)
        g = self._gates * self.hidden_size
        shapes = [("weight_ih", (g, self.input_size)), ("weight_hh", (g, self.hidden_size))]
        if bias:
            shapes += [("bias_ih", (g,)), ("bias_hh", (g,))]
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        for name, shape in shapes:
            setattr(self, name, Parameter(creation.empty(shape, dtype=dtype, device=device)))
        self.reset_parameters()

    def reset_parameters(self):
        """Draw every parameter from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _prepare(self, input, states):
        """Check the input and states; give them a batch dim; zeros for missing states."""
        owner = type(self).__name__
        _check_input(input, owner, self.input_size, self.weight_ih, (1, 2),
                     "1-d (unbatched) or 2-d (batched)")
        batched = input.ndim == 2
        x = input if batched else F.unsqueeze(input, 0)
        shape = (x.shape[0], self.hidden_size)
        out = []
        for h, what in states:
            if h is None:
                h = creation.zeros(shape, dtype=x.dtype, device=x.device)
            else:
                _check_state(h, shape if batched else shape[1:], owner, what)
                h = h if batched else F.unsqueeze(h, 0)
            out.append(h)
        return batched, x, out

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s


class RNNCell(RNNCellBase):
    """One step of an Elman RNN, as ``torch.nn.RNNCell``.

    ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``; ``cell(input, hx=None)``
    with ``input`` of shape ``(N, input_size)`` or ``(input_size,)`` returns ``h'``
    of shape ``(N, hidden_size)`` or ``(hidden_size,)``. ``hx`` defaults to zeros.

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool, default True
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
    device, dtype : optional
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', "
                             f"got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        batched, x, (h,) = self._prepare(input, [(hx, "hx")])
        act = F.tanh if self.nonlinearity == "tanh" else F.relu
        h = _rnn_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh,
                      self.bias_hh, act)
        return h if batched else F.squeeze(h, 0)


class LSTMCell(RNNCellBase):
    """One step of an LSTM, as ``torch.nn.LSTMCell``.

    ``cell(input, (h, c))`` (the pair defaults to zeros) returns ``(h', c')``;
    shapes as for :class:`RNNCell`. Gate order input, forget, cell, output.

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool, default True
    device, dtype : optional
    """

    _gates = 4

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTMCell: hx must be a pair (h, c), got {type(hx).__name__}")
        h0, c0 = hx if hx is not None else (None, None)
        batched, x, (h, c) = self._prepare(input, [(h0, "h"), (c0, "c")])
        h, c = _lstm_step(F.linear(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh,
                          self.bias_hh)
        return (h, c) if batched else (F.squeeze(h, 0), F.squeeze(c, 0))


class GRUCell(RNNCellBase):
    """One step of a GRU, as ``torch.nn.GRUCell``.

    ``cell(input, hx=None)`` returns ``h'``; shapes as for :class:`RNNCell`.
    Gate order reset, update, new.

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool, default True
    device, dtype : optional
    """

    _gates = 3

    def forward(self, input, hx=None):
        batched, x, (h,) = self._prepare(input, [(hx, "hx")])
        h = _gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh,
                      self.bias_hh)
        return h if batched else F.squeeze(h, 0)
