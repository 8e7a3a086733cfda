"""Attention layers: MultiheadAttention and TransformerEncoderLayer.

Constructor arguments, parameter and sub-module names (``in_proj_weight``,
``out_proj.weight``, ``self_attn``, ``linear1``, ``norm1``, ...), mask
conventions and numerics follow PyTorch, so a torch model's state_dict loads
directly and gives the same outputs.

Inside :class:`MultiheadAttention` the heads live in their own axis: the
projected ``(L, N, E)`` (or batch-first ``(N, L, E)``) tensors are reshaped to
``(N, heads, L, head_dim)``, so the scores of all heads are one batched matmul
``(N, heads, L, S)`` and the masks broadcast against them without copies.
"""
from __future__ import annotations

import math
import numbers

from .. import functional as F
from ..backend import get_array_module
from ..core import creation
from ..core.tensor import Tensor
from . import init
from .dropout import Dropout
from .linear import Linear
from .module import Module, Parameter
from .normalization import LayerNorm

__all__ = ["MultiheadAttention", "TransformerEncoderLayer"]


def _positive_int(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}")
    return int(value)


def _probability(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{owner}: {what} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _shape_str(shape):
    return str(tuple(int(n) for n in shape))


def _additive_mask(mask, what, dtype):
    """A mask as something to add to the scores: True (masked) -> -inf, False -> 0.

    A floating-point mask is added as it is (a Tensor stays in the graph).
    """
    arr = mask.data if isinstance(mask, Tensor) else mask
    kind = getattr(getattr(arr, "dtype", None), "kind", None)
    if kind == "b":
        xp = get_array_module(arr)
        return Tensor._make(xp.where(arr, -xp.inf, 0.0).astype(dtype))
    if kind == "f":
        return mask if isinstance(mask, Tensor) else Tensor._make(arr.astype(dtype, copy=False))
    raise TypeError(f"MultiheadAttention: {what} must be a bool or floating-point array or "
                    f"Tensor, got {type(mask).__name__}"
                    + (f" of dtype {arr.dtype}" if kind is not None else ""))


def _pad_last(mask):
    """Append one column of zeros (a key that is never masked) to a mask."""
    return F.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, 1)])


class MultiheadAttention(Module):
    """Multi-head scaled dot-product attention, as ``torch.nn.MultiheadAttention``.

    For each head ``h``: ``softmax(Q_h K_h^T / sqrt(head_dim) + mask) V_h`` with
    ``Q = query W_q^T + b_q`` (likewise ``K``, ``V``); the heads are concatenated
    and mapped by ``out_proj``.

    Parameters
    ----------
    embed_dim : int
        Model width ``E``; split into ``num_heads`` heads of ``E // num_heads``.
    num_heads : int
        Number of heads; must divide ``embed_dim``.
    dropout : float, default 0
        Dropout on the attention weights, in training mode only.
    bias : bool, default True
        Learn ``in_proj_bias`` and ``out_proj.bias``.
    add_bias_kv : bool, default False
        Learn one extra key ``bias_k`` and value ``bias_v`` (shape ``(1, 1, E)``)
        appended to every sequence of keys and values.
    add_zero_attn : bool, default False
        Append one all-zero key and value per head (after the projections).
    kdim, vdim : int, optional
        Features of ``key`` and ``value`` (default ``embed_dim``). When either
        differs from ``embed_dim`` the projections are three separate weights
        ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` instead of the
        packed ``in_proj_weight`` of shape ``(3 E, E)``.
    batch_first : bool, default False
        Inputs and output are ``(N, L, E)`` instead of ``(L, N, E)``.
    device, dtype : optional
        Where the parameters live and their dtype.

    Examples
    --------
    >>> mha = na.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = na.randn(3, 5, 8)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        owner = "MultiheadAttention"
        self.embed_dim = e = _positive_int(embed_dim, "embed_dim", owner)
        self.num_heads = _positive_int(num_heads, "num_heads", owner)
        if e % self.num_heads:
            raise ValueError(f"{owner}: embed_dim ({e}) must be divisible by num_heads "
                             f"({self.num_heads})")
        self.head_dim = e // self.num_heads
        self.kdim = e if kdim is None else _positive_int(kdim, "kdim", owner)
        self.vdim = e if vdim is None else _positive_int(vdim, "vdim", owner)
        self._qkv_same_embed_dim = self.kdim == e and self.vdim == e
        self.dropout = _probability(dropout, "dropout", owner)
        self.batch_first = bool(batch_first)
        self.add_zero_attn = bool(add_zero_attn)

        def param(*shape):
            return Parameter(creation.empty(shape, dtype=dtype, device=device))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = param(3 * e, e)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = param(e, e)
            self.k_proj_weight = param(e, self.kdim)
            self.v_proj_weight = param(e, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = param(3 * e)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(e, e, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = param(1, 1, e)
            self.bias_v = param(1, 1, e)
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self):
        # PyTorch's choices: Xavier-uniform projections, zero biases, Xavier-normal
        # extra key/value; out_proj.weight keeps Linear's default initialisation.
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        """Attend from ``query`` to ``key``/``value``.

        Parameters
        ----------
        query : Tensor
            ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``), or unbatched ``(L, E)``.
        key, value : Tensor
            ``(S, N, kdim)`` and ``(S, N, vdim)`` (batch first likewise), or
            unbatched ``(S, kdim)``, ``(S, vdim)``.
        key_padding_mask : Tensor or array, optional
            ``(N, S)`` (``(S,)`` unbatched): a bool mask where True marks a key to
            ignore, or a float mask added to the scores.
        need_weights : bool, default True
            Also return the attention weights (else ``None`` in their place).
        attn_mask : Tensor or array, optional
            ``(L, S)`` or ``(N * num_heads, L, S)``: bool (True = not allowed) or
            float (added to the scores).
        average_attn_weights : bool, default True
            Average the returned weights over the heads.
        is_causal : bool, default False
            A hint that ``attn_mask`` is the causal mask; as in PyTorch it
            requires ``attn_mask``, which is what is applied.

        Returns
        -------
        attn_output : Tensor
            Shaped like ``query``.
        attn_weights : Tensor or None
            ``(N, L, S)`` averaged, or ``(N, num_heads, L, S)`` per head (without
            the batch dim when unbatched); after dropout, as in PyTorch.
        """
        owner = "MultiheadAttention"
        for t, what in ((query, "query"), (key, "key"), (value, "value")):
            if not isinstance(t, Tensor):
                raise TypeError(f"{owner}: {what} must be a Tensor, got {type(t).__name__}")
        if query.ndim not in (2, 3):
            raise ValueError(f"{owner}: query must be 3-d (batched) or 2-d (unbatched), "
                             f"got shape {_shape_str(query.shape)}")
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{owner}: query, key and value must have the same number of "
                             f"dims; got shapes {_shape_str(query.shape)}, "
                             f"{_shape_str(key.shape)}, {_shape_str(value.shape)}")
        for t, what, size in ((query, "query", self.embed_dim), (key, "key", self.kdim),
                              (value, "value", self.vdim)):
            if t.shape[-1] != size:
                raise ValueError(f"{owner}: expected the last dim of {what} to be {size}, "
                                 f"got shape {_shape_str(t.shape)}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{owner}: key and value must agree in every dim but the last; "
                             f"got {_shape_str(key.shape)} and {_shape_str(value.shape)}")
        if is_causal and attn_mask is None:
            raise ValueError(f"{owner}: is_causal=True is a hint about attn_mask; "
                             "pass the causal attn_mask too")

        batched = query.ndim == 3
        batch_first = self.batch_first and batched
        seq_axis = 1 if batch_first else 0
        if batched and query.shape[1 - seq_axis] != key.shape[1 - seq_axis]:
            raise ValueError(f"{owner}: query and key have different batch sizes; got shapes "
                             f"{_shape_str(query.shape)} and {_shape_str(key.shape)}")
        n = query.shape[1 - seq_axis] if batched else 1
        tgt_len, src_len = query.shape[seq_axis], key.shape[seq_axis]
        heads, hd = self.num_heads, self.head_dim

        # -- masks, as additive float tensors --------------------------------------------
        dtype = query.dtype
        if attn_mask is not None:
            attn_mask = _additive_mask(attn_mask, "attn_mask", dtype)
            expected = {2: (tgt_len, src_len), 3: (n * heads, tgt_len, src_len)}
            if tuple(attn_mask.shape) != expected.get(attn_mask.ndim):
                raise ValueError(f"{owner}: attn_mask must have shape "
                                 f"{_shape_str(expected[2])} or {_shape_str(expected[3])}, "
                                 f"got {_shape_str(attn_mask.shape)}")
        if key_padding_mask is not None:
            key_padding_mask = _additive_mask(key_padding_mask, "key_padding_mask", dtype)
            expected = (n, src_len) if batched else (src_len,)
            if tuple(key_padding_mask.shape) != expected:
                raise ValueError(f"{owner}: key_padding_mask must have shape "
                                 f"{_shape_str(expected)}, got "
                                 f"{_shape_str(key_padding_mask.shape)}")
            if not batched:
                key_padding_mask = F.reshape(key_padding_mask, (1, src_len))
        self_attention = query is key and key is value
        if not batched:                     # a batch of one, sequence first
            query, key, value = (F.unsqueeze(t, 1) for t in (query, key, value))

        # -- projections ---------------------------------------------------------------------
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = F.chunk(self.in_proj_bias, 3)
        if self._qkv_same_embed_dim:
            if self_attention:          # one matmul projects all three
                q, k, v = F.chunk(F.linear(query, self.in_proj_weight, self.in_proj_bias), 3,
                                  axis=-1)
            else:
                w_q, w_k, w_v = F.chunk(self.in_proj_weight, 3)
                q, k, v = (F.linear(query, w_q, b_q), F.linear(key, w_k, b_k),
                           F.linear(value, w_v, b_v))
        else:
            q = F.linear(query, self.q_proj_weight, b_q)
            k = F.linear(key, self.k_proj_weight, b_k)
            v = F.linear(value, self.v_proj_weight, b_v)

        if self.bias_k is not None:                 # one more key/value per sequence
            shape = (n, 1, self.embed_dim) if batch_first else (1, n, self.embed_dim)
            k = F.concat([k, F.broadcast_to(self.bias_k, shape)], axis=seq_axis)
            v = F.concat([v, F.broadcast_to(self.bias_v, shape)], axis=seq_axis)
            attn_mask = None if attn_mask is None else _pad_last(attn_mask)
            key_padding_mask = None if key_padding_mask is None \
                else _pad_last(key_padding_mask)

        # -- split the heads: (N, heads, len, head_dim) ------------------------------------
        # (keys go straight to (N, heads, head_dim, S), ready for the score matmul)
        if batch_first:
            q = F.transpose(F.reshape(q, (n, tgt_len, heads, hd)), (0, 2, 1, 3))
            k = F.transpose(F.reshape(k, (n, -1, heads, hd)), (0, 2, 3, 1))
            v = F.transpose(F.reshape(v, (n, -1, heads, hd)), (0, 2, 1, 3))
        else:
            q = F.transpose(F.reshape(q, (tgt_len, n, heads, hd)), (1, 2, 0, 3))
            k = F.transpose(F.reshape(k, (-1, n, heads, hd)), (1, 2, 3, 0))
            v = F.transpose(F.reshape(v, (-1, n, heads, hd)), (1, 2, 0, 3))
        if self.add_zero_attn:
            xp = get_array_module(k)
            k = F.concat([k, Tensor._make(xp.zeros((n, heads, hd, 1), dtype=k.dtype))],
                         axis=3)
            v = F.concat([v, Tensor._make(xp.zeros((n, heads, 1, hd), dtype=v.dtype))],
                         axis=2)
            attn_mask = None if attn_mask is None else _pad_last(attn_mask)
            key_padding_mask = None if key_padding_mask is None \
                else _pad_last(key_padding_mask)

        # -- scores, softmax, weighted values --------------------------------------------------
        scores = F.matmul(q * math.sqrt(1.0 / hd), k)           # (N, heads, L, S')
        if attn_mask is not None:
            s = attn_mask.shape[-1]
            scores = scores + (attn_mask if attn_mask.ndim == 2
                               else F.reshape(attn_mask, (n, heads, tgt_len, s)))
        if key_padding_mask is not None:
            s = key_padding_mask.shape[-1]
            scores = scores + F.reshape(key_padding_mask, (n, 1, 1, s))
        weights = F.softmax(scores, axis=-1)
        if self.dropout > 0 and self.training:
            weights = F.dropout(weights, self.dropout, True)
        out = F.matmul(weights, v)                               # (N, heads, L, head_dim)
        if batch_first:
            out = F.reshape(F.transpose(out, (0, 2, 1, 3)), (n, tgt_len, self.embed_dim))
        else:
            out = F.reshape(F.transpose(out, (2, 0, 1, 3)), (tgt_len, n, self.embed_dim))
        out = self.out_proj(out)

        if not batched:
            out = F.squeeze(out, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = F.mean(weights, axis=1)
        return out, (weights if batched else F.squeeze(weights, 0))

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


class TransformerEncoderLayer(Module):
    """One Transformer encoder block, as ``torch.nn.TransformerEncoderLayer``.

    Self-attention then a two-layer feed-forward network, each inside a residual
    connection with layer normalisation: after the residual sum by default
    (post-norm), or on the branch input with ``norm_first=True`` (pre-norm)::

        post-norm: x = norm1(x + sa(x));         x = norm2(x + ff(x))
        pre-norm:  x = x + sa(norm1(x));         x = x + ff(norm2(x))

    with ``sa(x) = dropout1(self_attn(x, x, x))`` and
    ``ff(x) = dropout2(linear2(dropout(activation(linear1(x)))))``.

    Parameters
    ----------
    d_model : int
        Model width.
    nhead : int
        Attention heads; must divide ``d_model``.
    dim_feedforward : int, default 2048
        Width of the hidden layer of the feed-forward network.
    dropout : float, default 0.1
        Dropout probability (attention weights, feed-forward, both residual branches).
    activation : {'relu', 'gelu'} or callable, default 'relu'
        The feed-forward activation; a callable (function or Module) is used as is.
    layer_norm_eps : float, default 1e-5
    batch_first : bool, default False
        Input and output are ``(N, L, d_model)`` instead of ``(L, N, d_model)``.
    norm_first : bool, default False
        Pre-norm instead of post-norm.
    bias : bool, default True
        Learn biases in the linear layers, the attention and the layer norms.
    device, dtype : optional

    Examples
    --------
    >>> layer = na.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    >>> layer(na.randn(3, 5, 8)).shape
    (3, 5, 8)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        owner = "TransformerEncoderLayer"
        d_model = _positive_int(d_model, "d_model", owner)
        dim_feedforward = _positive_int(dim_feedforward, "dim_feedforward", owner)
        dropout = _probability(dropout, "dropout", owner)
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            acts = {"relu": F.relu, "gelu": F.gelu}
            if activation not in acts:
                raise ValueError(f"{owner}: activation must be 'relu', 'gelu' or a callable, "
                                 f"got {activation!r}")
            activation = acts[activation]
        elif not callable(activation):
            raise TypeError(f"{owner}: activation must be 'relu', 'gelu' or a callable, "
                            f"got {type(activation).__name__}")
        self.activation = activation

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        """Run the block on ``src``.

        Parameters
        ----------
        src : Tensor
            ``(L, N, d_model)`` (``(N, L, d_model)`` with ``batch_first``), or
            unbatched ``(L, d_model)``.
        src_mask : Tensor or array, optional
            The attention mask, ``(L, L)`` or ``(N * nhead, L, L)``; see
            :meth:`MultiheadAttention.forward`.
        src_key_padding_mask : Tensor or array, optional
            ``(N, L)``: True (or a float added to the scores) for positions to ignore.
        is_causal : bool, default False
            Hint that ``src_mask`` is the causal mask.

        Returns
        -------
        Tensor
            Shaped like ``src``.
        """
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)
