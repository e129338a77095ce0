"""TimeSformer: ViT with divided space-time attention, as facebookresearch/TimeSformer defines it
(`VisionTransformer` in `timesformer/models/vit.py`, attention_type="divided_space_time").

State-dict keys equal the reference's inner `VisionTransformer` (`patch_embed.proj.weight`,
`blocks.{i}.attn.qkv.weight`, `blocks.{i}.temporal_attn.qkv.weight`, `blocks.{i}.temporal_fc.weight`,
`time_embed`, `head.weight`, ...); the reference's released checkpoints wrap it as `model.` and the
weight loader strips that prefix.

Token order follows the reference exactly: patch tokens are ordered space-major, time-minor
(`b (h w t) m`), with one class token in front.

Differences from the reference, both deliberate:
- Input layout is ``NTCHW`` (the reference takes ``NCTHW``); patch embedding works per frame, so
  frames-first needs no transpose.
- Dropout (0.5 by default, SynAPT's setting) is applied to the class token before `head`; the
  reference constructs a `dropout` module but never calls it. It has no parameters, so keys and
  parameter counts are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from synapt_fast.models.common import VideoClassifier
from synapt_fast.models.registry import register_model


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability `p`."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        # Same maths as the reference's softmax(q k^T * head_dim**-0.5) v, via the fused kernel.
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DividedBlock(nn.Module):
    """Temporal attention (per patch position, over frames), then spatial attention (per frame,
    over patches plus the class token), then the MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.temporal_attn = Attention(dim, num_heads)
        self.temporal_fc = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, b: int, t: int) -> torch.Tensor:
        m = x.shape[-1]
        cls, patches = x[:, :1], x[:, 1:]
        hw = patches.shape[1] // t

        # Temporal: tokens are (h w t)-ordered, so each position's T frames are contiguous.
        xt = patches.reshape(b * hw, t, m)
        res_t = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        xt = patches + self.temporal_fc(res_t.reshape(b, hw * t, m))

        # Spatial: per frame, the patches of that frame plus a copy of the class token.
        xs = xt.view(b, hw, t, m).transpose(1, 2).reshape(b * t, hw, m)
        cls_rep = cls.repeat_interleave(t, dim=0)  # (b t) order
        res_s = self.drop_path(self.attn(self.norm1(torch.cat((cls_rep, xs), 1))))
        cls_res = res_s[:, 0].reshape(b, t, m).mean(1, keepdim=True)  # average over frames
        res_s = res_s[:, 1:].reshape(b, t, hw, m).transpose(1, 2).reshape(b, hw * t, m)

        x = torch.cat((cls, xt), 1) + torch.cat((cls_res, res_s), 1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TimeSformer(VideoClassifier):
    """TimeSformer with divided space-time attention.

    Input: ``NTCHW`` float clips ``(N, T, 3, H, W)``. Output: logits ``(N, num_classes)`` from the
    final class token.
    """

    input_layout = "NTCHW"
    family = "timesformer"
    classifier_name = "head"

    def __init__(self, num_classes: int, *, image_size: int = 224, patch_size: int = 16,
                 num_frames: int = 8, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.1, dropout: float = 0.5):
        super().__init__(num_frames=num_frames, image_size=image_size, dropout=dropout)
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        num_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, embed_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()  # stochastic depth decay rule
        self.blocks = nn.ModuleList(DividedBlock(embed_dim, num_heads, mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)

        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                self.init_classifier(m)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Blocks after the first start with a zero temporal branch (reference initialisation),
        # so an ImageNet ViT's spatial behaviour is preserved at the start of training.
        for blk in list(self.blocks)[1:]:
            nn.init.zeros_(blk.temporal_fc.weight)
            nn.init.zeros_(blk.temporal_fc.bias)

    def init_classifier(self, fc: nn.Linear) -> None:
        nn.init.trunc_normal_(fc.weight, std=0.02)
        nn.init.zeros_(fc.bias)

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        b, t = x.shape[:2]
        x = self.patch_embed.proj(x.reshape(b * t, *x.shape[2:]))  # (b t) m h w
        gh, gw = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)  # (b t) (h w) m
        pos = self.pos_embed
        if pos.shape[1] != gh * gw + 1:  # other resolution: nearest-resize the patch grid
            side = int((pos.shape[1] - 1) ** 0.5)
            grid = pos[:, 1:].transpose(1, 2).reshape(1, -1, side, side)
            grid = F.interpolate(grid, size=(gh, gw), mode="nearest").flatten(2).transpose(1, 2)
            pos = torch.cat((pos[:, :1], grid), 1)
        x = x + pos[:, 1:]
        cls = self.cls_token + pos[:, :1]
        time = self.time_embed
        if time.shape[1] != t:  # other clip length: nearest-resize the time embedding
            time = F.interpolate(time.transpose(1, 2), size=t, mode="nearest").transpose(1, 2)
        m = x.shape[-1]
        x = x.reshape(b, t, gh * gw, m).transpose(1, 2) + time.unsqueeze(1)  # b (h w) t m
        x = torch.cat((cls.expand(b, -1, -1), x.reshape(b, gh * gw * t, m)), 1)
        return x, b, t

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip features ``(N, embed_dim)``: the normalised class token."""
        x, b, t = self._embed(x)
        for blk in self.blocks:
            x = blk(x, b, t)
        return self.norm(x)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def timesformer_b16(num_classes: int, **kw) -> TimeSformer:
    """TimeSformer-B/16, divided space-time attention, 8 frames at 224² (ViT-B/16 backbone)."""
    return TimeSformer(num_classes, **kw)


@register_model
def timesformer_tiny(num_classes: int, **kw) -> TimeSformer:
    """Tiny TimeSformer for tests and CPU demos: width 32, 2 blocks, 2 heads, patch 8, 4x32²."""
    kw = {"image_size": 32, "patch_size": 8, "num_frames": 4, "embed_dim": 32, "depth": 2,
          "num_heads": 2, **kw}
    return TimeSformer(num_classes, **kw)
