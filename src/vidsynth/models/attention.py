"""Multi-head attention on ``scaled_dot_product_attention`` and the GEGLU feed-forward.

Parameter names (``to_q``, ``to_k``, ``to_v``, ``to_out.0``, ``ff.net.0.proj``, ``ff.net.2``) are
the diffusers checkpoint names. Attention masks are not supported: the ModelScope-family UNets are
always run with ``attention_mask=None``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None, else cross-attention.

    Shapes: ``x`` (N, S, query_dim), ``context`` (N, L, context_dim) -> (N, S, query_dim).
    """

    def __init__(
        self,
        query_dim: int,
        heads: int,
        head_dim: int,
        context_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.head_dim = head_dim
        self.is_cross = context_dim is not None
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or query_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or query_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(dropout)])
        self._fused_qkv: torch.Tensor | None = None  # plain attribute: not in the state dict

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        # (N, S, heads*d) -> (N, heads, S, d) as a view; SDPA accepts the strided layout.
        return t.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def _fused_qkv_weight(self) -> torch.Tensor:
        """``[W_q; W_k; W_v]`` as one (3*inner, dim) tensor that *is* the three weights' storage.

        One large matmul instead of three smaller ones makes self-attention 10-30% faster on CPU.
        On first use the three weights are moved into a single buffer and the parameters become
        views of it (``param.data = view``: same Parameter objects, same state-dict keys, no extra
        memory). If anything later re-allocates the weights (``.to()``, ``load_state_dict(...,
        assign=True)``), the pointer check below notices and the buffer is rebuilt.
        """
        wq, wk, wv = self.to_q.weight, self.to_k.weight, self.to_v.weight
        fused = self._fused_qkv
        if fused is not None and fused.dtype == wq.dtype and fused.device == wq.device:
            base, step = fused.data_ptr(), wq.numel() * wq.element_size()
            expected = (base, base + step, base + 2 * step)
            if (wq.data_ptr(), wk.data_ptr(), wv.data_ptr()) == expected:
                return fused
        # Outside inference mode, so the parameters never turn into inference-only tensors.
        with torch.inference_mode(False), torch.no_grad():
            fused = torch.cat([wq, wk, wv])
            for param, view in zip((wq, wk, wv), fused.chunk(3), strict=True):
                param.data = view
        self._fused_qkv = fused
        return fused

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if context is None and not (torch.is_grad_enabled() and self.to_q.weight.requires_grad):
            qkv = F.linear(x, self._fused_qkv_weight())
            q, k, v = qkv.unflatten(-1, (3, self.heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        else:
            kv_in = x if context is None else context
            q = self._split_heads(self.to_q(x))
            k = self._split_heads(self.to_k(kv_in))
            v = self._split_heads(self.to_v(kv_in))
        out = F.scaled_dot_product_attention(q, k, v)
        # SDPA's CPU/flash kernels allocate the output as (N, S, heads, d) and return it
        # transposed, so this flatten is usually free.
        out = out.transpose(1, 2).flatten(2)
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    """``a * gelu(b)`` where ``[a, b]`` is one projection split in half along features."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)  # views, no copies
        if torch.is_grad_enabled():
            return value * F.gelu(gate)
        # Inference: reuse gelu's fresh output buffer instead of allocating a third tensor.
        return F.gelu(gate).mul_(value)


class FeedForward(nn.Module):
    """``GEGLU(dim -> mult*dim) -> Dropout -> Linear(mult*dim -> dim)`` (``net.0``, ``net.2``).

    Without autograd, long token sequences are processed in chunks of ``chunk_tokens`` rows: the
    (tokens, 2*mult*dim) GEGLU intermediate is the largest activation in the whole UNet, and
    rows are independent, so chunking caps peak memory at no cost in speed or accuracy.
    """

    chunk_tokens = 4096

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim)])

    def _apply_layers(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        if torch.is_grad_enabled() or rows.shape[0] <= self.chunk_tokens:
            return self._apply_layers(x)
        out = rows.new_empty(rows.shape[0], self.net[2].out_features)
        for start in range(0, rows.shape[0], self.chunk_tokens):
            stop = start + self.chunk_tokens
            out[start:stop] = self._apply_layers(rows[start:stop])
        return out.view(*x.shape[:-1], -1)
