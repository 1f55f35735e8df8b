"""PyTorch models for the S²CPNet benchmark (written from the project's shared/spec/S2CPNET.md, sections 4-7).

Layout is NCHW for images and feature maps, [B, N, C] for token maps. Everything is float32 on CPU with random
initialisation; nothing is downloaded. The blocks follow the toolkit's defaults where the spec leaves a choice:

* attention: separate q/k/v/out linears with bias, dropout on the attention weights, scaled dot product;
* feed-forward: Linear(d -> h), ReLU, dropout, Linear(h -> d);
* every sub-layer output gets dropout before its residual sum (post-norm, LayerNorm eps 1e-5);
* CVFF merge conv has no bias (a batch norm follows it); enhancer convs have a bias;
* decoder input = sqrt(d) * embedding + sinusoidal + learned positions, then dropout.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3

KV = Tuple[torch.Tensor, torch.Tensor]  # keys, values: [B, heads, N, headDim]


# ----------------------------------------------------------------------------------------------------------------
# Backbones
# ----------------------------------------------------------------------------------------------------------------


def resnet50_trunk() -> nn.Sequential:
    """torchvision ResNet50 (random weights) without avgpool/fc: [B,3,224,224] -> [B,2048,7,7]."""
    import torchvision

    try:
        net = torchvision.models.resnet50(weights=None)
    except TypeError:  # torchvision < 0.13
        net = torchvision.models.resnet50(pretrained=False)
    return nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )


def freeze_resnet_stem_stage1(trunk: nn.Sequential) -> None:
    """Stem (conv1, bn1) and layer1 get requires_grad False; their batch norms stay in whatever mode the model is."""
    for module in list(trunk)[:5]:
        for p in module.parameters():
            p.requires_grad_(False)


def _conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> List[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
        nn.ReLU6(inplace=True),
    ]


class MobileNetV1(nn.Module):
    """MobileNetV1 trunk in the Keras layout, width multiplier `alpha`: [B,3,224,224] -> [B,1024*alpha,7,7].

    Keras pads stride-2 layers asymmetrically ('same': 0 before, 1 after); symmetric padding 1 gives the same
    output sizes and the same amount of work.
    """

    # (pointwise output channels, depthwise stride) of the 13 depthwise-separable blocks
    BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]

    def __init__(self, alpha: float = 0.75):
        super().__init__()
        ch = lambda c: int(c * alpha)  # noqa: E731
        layers: List[nn.Module] = _conv_bn_relu6(3, ch(32), 3, 2)
        cin = ch(32)
        for cout, stride in self.BLOCKS:
            layers += _conv_bn_relu6(cin, cin, 3, stride, groups=cin)  # depthwise 3x3
            layers += _conv_bn_relu6(cin, ch(cout), 1, 1)  # pointwise 1x1
            cin = ch(cout)
        self.features = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


# ----------------------------------------------------------------------------------------------------------------
# Transformer building blocks
# ----------------------------------------------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
    """Multi-head attention with explicit key/value projection so that callers can cache K/V.

    `attend(query, kv, ...)`: query [R, T, d]; kv keys/values [M, h, S, hd] with R = M * rows_per_kv. Query rows
    i*r .. i*r+r-1 read kv item i (the kv item is broadcast, i.e. expanded without a copy).
    """

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        assert dim % heads == 0
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [B, S, d] -> [B, h, S, hd]
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def project_kv(self, source: torch.Tensor) -> KV:
        return self._split(self.k(source)), self._split(self.v(source))

    def append_kv(self, cache: Optional[KV], x: torch.Tensor) -> KV:
        k, v = self.project_kv(x)
        if cache is None:
            return k, v
        return torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)

    def attend(
        self,
        query: torch.Tensor,
        kv: KV,
        causal: bool = False,
        past_length: int = 0,
        rows_per_kv: int = 1,
    ) -> torch.Tensor:
        keys, values = kv
        r_rows, t, _ = query.shape
        q = self._split(self.q(query)) * (self.head_dim ** -0.5)  # [R, h, T, hd]
        if rows_per_kv > 1:
            m = keys.shape[0]
            q = q.view(m, rows_per_kv, self.heads, t, self.head_dim)
            keys, values = keys.unsqueeze(1), values.unsqueeze(1)  # broadcast over the rows of an item
        scores = torch.matmul(q, keys.transpose(-1, -2))  # [..., T, S]
        if causal and t > 1:
            s = keys.shape[-2]
            qpos = torch.arange(past_length, past_length + t).unsqueeze(1)
            kpos = torch.arange(s).unsqueeze(0)
            scores = scores.masked_fill(kpos > qpos, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        weights = F.dropout(weights, self.dropout, self.training)
        out = torch.matmul(weights, values)  # [..., T, hd]
        out = out.reshape(r_rows, self.heads, t, self.head_dim).transpose(1, 2).reshape(r_rows, t, self.dim)
        return self.out(out)

    def forward(self, query: torch.Tensor, key_value_source: torch.Tensor, causal: bool = False) -> torch.Tensor:
        return self.attend(query, self.project_kv(key_value_source), causal=causal)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.inner = nn.Linear(dim, hidden)
        self.outer = nn.Linear(hidden, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(F.dropout(F.relu(self.inner(x)), self.dropout, self.training))


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    i = torch.arange(0, dim, 2, dtype=torch.float32)
    angle = pos / torch.pow(10000.0, i / dim)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table


# ----------------------------------------------------------------------------------------------------------------
# Enhancers (spec section 4)
# ----------------------------------------------------------------------------------------------------------------


class SemanticEnhancer(nn.Module):
    """W = sigmoid(Conv1x1(ReLU(Conv1x1(AvgPool(E))))), F = W * E (reduction 16, convs with bias)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(e, 1)))))
        return w * e


class SpatialEnhancer(nn.Module):
    """L = GAP(M) broadcast, H = M - L, W_back = sigmoid(min_c H), W_fore = sigmoid(max_c H),
    F = Conv1x1(C -> out)(a * W_back * M + (1 - a) * W_fore * M), `a` learnable, starts at 0.5."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))
        self.output = nn.Conv2d(channels, out_channels, 1)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        h = m - m.mean(dim=(2, 3), keepdim=True)
        w_back = torch.sigmoid(h.amin(dim=1, keepdim=True))
        w_fore = torch.sigmoid(h.amax(dim=1, keepdim=True))
        return self.output(self.a * w_back * m + (1 - self.a) * w_fore * m)


# ----------------------------------------------------------------------------------------------------------------
# CVFF (spec section 5)
# ----------------------------------------------------------------------------------------------------------------


class CrossViewUnit(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.gate = nn.Linear(2 * dim, 2)
        self.dropout = dropout
        self.attn = nn.ModuleList([MultiHeadAttention(dim, heads, dropout) for _ in range(2)])
        self.attn_norm = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])
        self.ffn = nn.ModuleList([FeedForward(dim, ffn, dropout) for _ in range(2)])
        self.ffn_norm = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])

    def _update(self, i: int, view: torch.Tensor, fused_kv: Sequence[KV]) -> torch.Tensor:
        a = self.attn_norm[i](view + F.dropout(self.attn[i].attend(view, fused_kv[i]), self.dropout, self.training))
        return self.ffn_norm[i](a + F.dropout(self.ffn[i](a), self.dropout, self.training))

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        g = torch.sigmoid(self.gate(torch.cat([v1, v2], -1)))
        fused = g[..., 0:1] * v1 + g[..., 1:2] * v2
        kv = [self.attn[0].project_kv(fused), self.attn[1].project_kv(fused)]
        return self._update(0, v1, kv), self._update(1, v2, kv)


class ResidualMerge(nn.Module):
    """ReLU(x + BN(Conv3x3(x))) on the grid, channels 2d; conv without bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.norm(self.conv(x)))


class CVFF(nn.Module):
    """Tokens V1 [B,N,C1], V2 [B,N,C2] -> memory [B,N,2d]."""

    def __init__(self, c1: int, c2: int, dim: int = 512, units: int = 3, heads: int = 8, ffn_mult: int = 4,
                 dropout: float = 0.1, grid: int = 14):
        super().__init__()
        assert dim % 2 == 0
        self.dim, self.grid = dim, grid
        self.proj1 = nn.Linear(c1, dim)
        self.proj2 = nn.Linear(c2, dim)
        self.pos_rows = nn.Parameter(torch.randn(grid, dim // 2) * 0.02)
        self.pos_cols = nn.Parameter(torch.randn(grid, dim // 2) * 0.02)
        self.units = nn.ModuleList([CrossViewUnit(dim, heads, ffn_mult * dim, dropout) for _ in range(units)])
        self.merges = nn.ModuleList([ResidualMerge(2 * dim) for _ in range(units)])

    def positions(self) -> torch.Tensor:  # [G*G, d], row table then column table per cell
        g, h = self.grid, self.dim // 2
        rows = self.pos_rows.unsqueeze(1).expand(g, g, h)
        cols = self.pos_cols.unsqueeze(0).expand(g, g, h)
        return torch.cat([rows, cols], -1).reshape(g * g, self.dim)

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        b, n, _ = v1.shape
        assert n == self.grid * self.grid, f"expected {self.grid ** 2} tokens, found {n}"
        pos = self.positions()
        x1, x2 = self.proj1(v1) + pos, self.proj2(v2) + pos
        fuse: Optional[torch.Tensor] = None  # [B, 2d, G, G]
        for unit, merge in zip(self.units, self.merges):
            x1, x2 = unit(x1, x2)
            x = torch.cat([x1, x2], -1).transpose(1, 2).reshape(b, 2 * self.dim, self.grid, self.grid)
            if fuse is not None:
                x = x + fuse
            fuse = merge(x)
        return fuse.flatten(2).transpose(1, 2)  # [B, N, 2d]


# ----------------------------------------------------------------------------------------------------------------
# Decoders (spec section 6)
# ----------------------------------------------------------------------------------------------------------------


class GatedDecoderLayer(nn.Module):
    """Eq. 6: T = LN(w + SelfMHA(w)); Vv = MHA(T, M, M); F = LN_a(sig(Vv)*Vv) + LN_b(sig(T)*T) + w;
    out = LN(F + FFN(F)). Dropout on SelfMHA(w), on Vv and on FFN(F)."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, heads, dropout)
        self.cross_attn = MultiHeadAttention(dim, heads, dropout)
        self.ffn = FeedForward(dim, ffn, dropout)
        self.text_norm = nn.LayerNorm(dim)
        self.visual_gate_norm = nn.LayerNorm(dim)
        self.text_gate_norm = nn.LayerNorm(dim)
        self.out_norm = nn.LayerNorm(dim)
        self.dropout = dropout

    def forward(self, w: torch.Tensor, self_kv: KV, past_length: int, memory_kv: KV, rows_per_memory: int) -> torch.Tensor:
        drop = lambda x: F.dropout(x, self.dropout, self.training)  # noqa: E731
        causal = w.shape[1] > 1
        text = self.text_norm(w + drop(self.self_attn.attend(w, self_kv, causal=causal, past_length=past_length)))
        visual = drop(self.cross_attn.attend(text, memory_kv, rows_per_kv=rows_per_memory))
        fused = (self.visual_gate_norm(torch.sigmoid(visual) * visual)
                 + self.text_gate_norm(torch.sigmoid(text) * text) + w)
        return self.out_norm(fused + drop(self.ffn(fused)))


class GatedCaptionDecoder(nn.Module):
    def __init__(self, vocab: int = 274, memory_width: int = 1024, dim: int = 512, layers: int = 3, heads: int = 8,
                 ffn: Optional[int] = None, dropout: float = 0.1, max_length: int = 32):
        super().__init__()
        self.vocab, self.dim, self.max_length, self.dropout = vocab, dim, max_length, dropout
        self.embedding = nn.Embedding(vocab, dim)
        nn.init.normal_(self.embedding.weight, std=dim ** -0.5)
        self.positions = nn.Parameter(torch.randn(max_length, dim) * 0.02)
        self.register_buffer("sinusoid", sinusoidal_table(max_length, dim), persistent=False)
        self.memory_proj = nn.Linear(memory_width, dim)
        self.layers = nn.ModuleList([GatedDecoderLayer(dim, heads, ffn or 4 * dim, dropout) for _ in range(layers)])
        self.head = nn.Linear(dim, vocab)

    def embed(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        t = tokens.shape[1]
        assert offset + t <= self.max_length
        x = self.embedding(tokens) * math.sqrt(self.dim) + self.sinusoid[offset:offset + t] + self.positions[offset:offset + t]
        return F.dropout(x, self.dropout, self.training)

    def forward(self, memory: torch.Tensor, tokens: torch.Tensor, captions_per_image: int = 1) -> torch.Tensor:
        """Teacher forcing: memory [B,N,Dm], tokens [B*c,T] -> logits [B*c,T,V]. The memory is projected once per
        image and each image's keys/values are broadcast (expanded) to its c caption rows."""
        assert tokens.shape[0] == memory.shape[0] * captions_per_image
        m = self.memory_proj(memory)
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, layer.self_attn.project_kv(x), 0, layer.cross_attn.project_kv(m), captions_per_image)
        return self.head(x)

    # ---- step-wise decoding with a key/value cache ----
    def init_cache(self, memory: torch.Tensor) -> dict:
        m = self.memory_proj(memory)
        return {"memory_kv": [layer.cross_attn.project_kv(m) for layer in self.layers],
                "self_kv": [None] * len(self.layers), "length": 0}

    def step(self, tokens: torch.Tensor, cache: dict, rows_per_memory: int) -> torch.Tensor:
        """tokens [R] (one new word per row) -> logits [R,V]; updates cache in place."""
        x = self.embed(tokens.unsqueeze(1), cache["length"])
        for i, layer in enumerate(self.layers):
            kv = layer.self_attn.append_kv(cache["self_kv"][i], x)
            cache["self_kv"][i] = kv
            x = layer(x, kv, cache["length"], cache["memory_kv"][i], rows_per_memory)
        cache["length"] += 1
        return self.head(x[:, 0])

    @staticmethod
    def reorder_cache(cache: dict, rows: torch.Tensor) -> None:
        cache["self_kv"] = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in cache["self_kv"]]


class CategoryHead(nn.Module):
    """Multi-label noun head: K learned class queries; LN(Q + SelfMHA(Q)) (image independent, once per call),
    LN(x + MHA(x, M, M)), LN(x + FFN(x)); logit_k = <x_k, w_k> + b_k."""

    def __init__(self, classes: int = 91, memory_width: int = 1024, dim: int = 512, heads: int = 8,
                 ffn: Optional[int] = None, dropout: float = 0.1):
        super().__init__()
        self.classes, self.dim, self.dropout = classes, dim, dropout
        self.memory_proj = nn.Linear(memory_width, dim)
        self.queries = nn.Parameter(torch.randn(classes, dim) * dim ** -0.5)
        self.self_attn = MultiHeadAttention(dim, heads, dropout)
        self.self_norm = nn.LayerNorm(dim)
        self.cross_attn = MultiHeadAttention(dim, heads, dropout)
        self.cross_norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn or 4 * dim, dropout)
        self.out_norm = nn.LayerNorm(dim)
        limit = math.sqrt(6 / (dim + 1))
        self.class_weights = nn.Parameter(torch.empty(classes, dim).uniform_(-limit, limit))
        self.class_biases = nn.Parameter(torch.zeros(classes))

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        drop = lambda x: F.dropout(x, self.dropout, self.training)  # noqa: E731
        b = memory.shape[0]
        m = self.memory_proj(memory)
        q = self.queries.unsqueeze(0)
        x = self.self_norm(q + drop(self.self_attn(q, q))).expand(b, -1, -1)
        x = self.cross_norm(x + drop(self.cross_attn(x, m)))
        x = self.out_norm(x + drop(self.ffn(x)))
        return (x * self.class_weights).sum(-1) + self.class_biases  # [B, K]


# ----------------------------------------------------------------------------------------------------------------
# Full model
# ----------------------------------------------------------------------------------------------------------------


class S2CPNet(nn.Module):
    """S²CPNet: shared backbone (optional: None means cached features), semantic/spatial enhancers, CVFF,
    category head and gated caption decoder."""

    def __init__(self, backbone: Optional[nn.Module], channels: int, spatial_out: int, dim: int, grid: int,
                 upsample: bool, dec_dim: int, dec_layers: int, vocab: int = 274, classes: int = 91, heads: int = 8,
                 dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.upsample = upsample
        self.semantic = SemanticEnhancer(channels, 16)
        self.spatial = SpatialEnhancer(channels, spatial_out)
        self.cvff = CVFF(channels, spatial_out, dim, 3, heads, 4, dropout, grid)
        self.category = CategoryHead(classes, 2 * dim, dec_dim, heads, 4 * dec_dim, dropout)
        self.decoder = GatedCaptionDecoder(vocab, 2 * dim, dec_dim, dec_layers, heads, 4 * dec_dim, dropout)

    def encode(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """images/masks: pixels [B,3,H,W] with a backbone, features [B,C,g,g] without. -> memory [B,N,2d]."""
        b = images.shape[0]
        if self.backbone is not None:
            feats = self.backbone(torch.cat([images, masks], 0))  # one pass over both views
            e, m = feats[:b], feats[b:]
        else:
            e, m = images, masks
        if self.upsample:
            e = F.interpolate(e, scale_factor=2, mode="nearest")
            m = F.interpolate(m, scale_factor=2, mode="nearest")
        v1 = self.semantic(e).flatten(2).transpose(1, 2)
        v2 = self.spatial(m).flatten(2).transpose(1, 2)
        return self.cvff(v1, v2)

    def loss(self, images: torch.Tensor, masks: torch.Tensor, tokens_in: torch.Tensor, tokens_out: torch.Tensor,
             category_targets: torch.Tensor, captions_per_image: int) -> torch.Tensor:
        memory = self.encode(images, masks)
        logits = self.decoder(memory, tokens_in, captions_per_image)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens_out.reshape(-1), ignore_index=PAD_ID)
        bce = F.binary_cross_entropy_with_logits(self.category(memory), category_targets)
        return ce + bce


def s2cpnet_paper(vocab: int = 274, classes: int = 91) -> S2CPNet:
    trunk = resnet50_trunk()
    freeze_resnet_stem_stage1(trunk)
    return S2CPNet(trunk, 2048, 512, 512, 14, True, 512, 3, vocab, classes)


def s2cpnet_lite_heads(vocab: int = 274, classes: int = 91) -> S2CPNet:
    """The lite preset on cached MobileNetV1-0.75 features (768 channels, 7x7): no backbone in the module."""
    return S2CPNet(None, 768, 256, 256, 7, False, 256, 2, vocab, classes)


# ----------------------------------------------------------------------------------------------------------------
# Beam search (fixed work: exactly `steps` words, <end> disabled)
# ----------------------------------------------------------------------------------------------------------------


def _beam_select(logits: torch.Tensor, scores: torch.Tensor, images: int, beam: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits [images*beam, V] -> (new scores [images*beam], source rows [images*beam], words [images*beam])."""
    vocab = logits.shape[-1]
    logits = logits.clone()
    logits[:, END_ID] = float("-inf")  # never stop early: every run does the same work
    logits[:, PAD_ID] = float("-inf")
    logp = torch.log_softmax(logits, -1)
    total = (scores.unsqueeze(1) + logp).view(images, beam * vocab)
    top, idx = total.topk(beam, dim=1)
    source_beam = torch.div(idx, vocab, rounding_mode="floor")
    words = idx % vocab
    rows = (torch.arange(images).unsqueeze(1) * beam + source_beam).reshape(-1)
    return top.reshape(-1), rows, words.reshape(-1)


def _initial_scores(images: int, beam: int) -> torch.Tensor:
    # All beams start from <start>; only beam 0 is live at first so that the first step picks distinct words.
    scores = torch.full((images, beam), float("-inf"))
    scores[:, 0] = 0.0
    return scores.reshape(-1)


def beam_search_no_cache(decoder: GatedCaptionDecoder, memory: torch.Tensor, beam: int = 3, steps: int = 25) -> torch.Tensor:
    """The authors' way: the memory is expanded per beam and the whole decoder (memory projection, cross K/V,
    every prefix position) re-runs at every step. memory [B,N,D] -> words [B, beam, steps]."""
    b = memory.shape[0]
    expanded = memory.repeat_interleave(beam, 0)  # [B*beam, N, D]
    prefix = torch.full((b * beam, 1), START_ID, dtype=torch.long)
    scores = _initial_scores(b, beam)
    for _ in range(steps):
        logits = decoder(expanded, prefix, 1)[:, -1]
        scores, rows, words = _beam_select(logits, scores, b, beam)
        prefix = torch.cat([prefix.index_select(0, rows), words.unsqueeze(1)], 1)
    return prefix[:, 1:].reshape(b, beam, steps)


def beam_search_kv_cache(decoder: GatedCaptionDecoder, memory: torch.Tensor, beam: int = 3, steps: int = 25) -> torch.Tensor:
    """Cached decoding: memory projected and its cross-attention K/V computed once per image (shared by the image's
    beams); each step runs only the new word, whose self-attention reads the cached K/V of the prefix."""
    b = memory.shape[0]
    cache = decoder.init_cache(memory)
    words = torch.full((b * beam,), START_ID, dtype=torch.long)
    history = torch.zeros((b * beam, 0), dtype=torch.long)
    scores = _initial_scores(b, beam)
    for _ in range(steps):
        logits = decoder.step(words, cache, beam)
        scores, rows, words = _beam_select(logits, scores, b, beam)
        decoder.reorder_cache(cache, rows)
        history = torch.cat([history.index_select(0, rows), words.unsqueeze(1)], 1)
    return history.reshape(b, beam, steps)


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
