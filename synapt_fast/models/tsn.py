"""TSN: a 2D ResNet applied to every frame, logits averaged over frames.

Matches the `resnet` backbone of IBM/action-recognition-pytorch (the code SynAPT's CNN baselines
were trained with) without a temporal module: same module tree and state-dict keys
(`conv1.weight`, `layer1.0.conv1.weight`, `layer1.0.downsample.0.weight`, `fc.weight`, ...), so
its checkpoints and torchvision ImageNet ResNet weights load unchanged.

Plain TSN has no temporal stride (IBM's `--without_t_stride`). The IBM code's temporal-stride
variant inserts a parameter-free temporal pooling (kernel 3, stride 2, max or avg) after
layer1, layer2 and layer3; `temporal_pool="max" | "avg"` builds it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from synapt_fast.models.common import VideoClassifier, init_resnet_weights
from synapt_fast.models.registry import register_model

RESNET_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class Bottleneck2d(nn.Module):
    """torchvision-style ResNet bottleneck (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_layer2d(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * Bottleneck2d.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * Bottleneck2d.expansion, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * Bottleneck2d.expansion),
        )
    layers = [Bottleneck2d(inplanes, planes, stride, downsample)]
    layers += [Bottleneck2d(planes * Bottleneck2d.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def temporal_pool(x: torch.Tensor, frames: int, mode: str) -> torch.Tensor:
    """Pool ``(N*T, C, H, W)`` over T with kernel 3, stride 2, padding 1 (IBM `TemporalPooling`)."""
    nt, c, h, w = x.shape
    x = x.view(nt // frames, frames, c, h, w).transpose(1, 2)
    pool = F.max_pool3d if mode == "max" else F.avg_pool3d
    x = pool(x, kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
    return x.transpose(1, 2).reshape(-1, c, h, w)


class TSN(VideoClassifier):
    """TSN with a bottleneck ResNet backbone.

    Input: ``NTCHW`` float clips ``(N, T, 3, H, W)`` (the IBM code's ``(N, T*3, H, W)`` is also
    accepted). Output: logits ``(N, num_classes)``, the mean over frames of
    ``fc(dropout(pooled frame feature))``.
    """

    input_layout = "NTCHW"
    family = "tsn"
    classifier_name = "fc"

    def __init__(self, num_classes: int, *, layers=RESNET_LAYERS[50], width: int = 64,
                 num_frames: int = 8, image_size: int = 224, dropout: float = 0.5,
                 temporal_pool: str | None = None):
        super().__init__(num_frames=num_frames, image_size=image_size, dropout=dropout)
        if temporal_pool not in (None, "max", "avg"):
            raise ValueError(f"temporal_pool must be None, 'max' or 'avg', not {temporal_pool!r}")
        self.temporal_pool = temporal_pool
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = width
        for i, blocks in enumerate(layers):
            planes = width * 2**i
            self.add_module(f"layer{i + 1}", make_layer2d(inplanes, planes, blocks, 1 if i == 0 else 2))
            inplanes = planes * Bottleneck2d.expansion
        self.fc = nn.Linear(inplanes, num_classes)

        init_resnet_weights(self)
        # IBM's 2D ResNet leaves the fc at nn.Linear's default initialisation.

    def init_classifier(self, fc: nn.Linear) -> None:
        fc.reset_parameters()

    def _frames(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """``(N, T, C, H, W)`` or IBM ``(N, T*C, H, W)`` -> ``(N*T, C, H, W)``, N, T."""
        if x.dim() == 5:
            n, t = x.shape[:2]
            return x.reshape(n * t, *x.shape[2:]), n, t
        n, tc, h, w = x.shape
        t = self.num_frames
        return x.reshape(n * t, tc // t, h, w), n, t

    def _frame_features(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Pooled per-frame features ``(N, T', D)``, T' = T unless temporal pooling is on."""
        x, n, t = self._frames(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x = layer(x)
            if self.temporal_pool is not None and i < 3:
                x = temporal_pool(x, t, self.temporal_pool)
                t = x.shape[0] // n
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return x.view(n, t, -1), n

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip features ``(N, D)``: per-frame pooled features averaged over frames."""
        feats, _ = self._frame_features(x)
        return feats.mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, n = self._frame_features(x)
        # Dropout and fc per frame, then average the frame logits (IBM / TSN consensus).
        logits = self.fc(self.dropout(feats))
        return logits.mean(1)


def _tsn(num_classes: int, depth: int = 50, **kw) -> TSN:
    return TSN(num_classes, layers=RESNET_LAYERS[depth], **kw)


@register_model
def tsn_r50(num_classes: int, **kw) -> TSN:
    """TSN ResNet-50, 8 frames at 224², no temporal stride (as SynAPT's TSN baseline)."""
    return _tsn(num_classes, **kw)


@register_model
def tsn_r50_tpool_max(num_classes: int, **kw) -> TSN:
    """TSN ResNet-50 with IBM's temporal max pooling after layer1-3 (`resnet-50-ts-max`)."""
    return _tsn(num_classes, temporal_pool="max", **kw)


@register_model
def tsn_r50_tpool_avg(num_classes: int, **kw) -> TSN:
    """TSN ResNet-50 with IBM's temporal average pooling after layer1-3 (`resnet-50-ts-avg`)."""
    return _tsn(num_classes, temporal_pool="avg", **kw)


@register_model
def tsn_r101(num_classes: int, **kw) -> TSN:
    """TSN ResNet-101."""
    return _tsn(num_classes, depth=101, **kw)


@register_model
def tsn_tiny(num_classes: int, **kw) -> TSN:
    """Tiny TSN for tests and CPU demos: one bottleneck per stage, width 8, 4 frames at 32²."""
    kw = {"layers": (1, 1, 1, 1), "width": 8, "num_frames": 4, "image_size": 32, **kw}
    return TSN(num_classes, **kw)


@register_model
def tsn_tiny_tpool_max(num_classes: int, **kw) -> TSN:
    """Tiny TSN with temporal max pooling, exercising the temporal-stride path."""
    return tsn_tiny(num_classes, temporal_pool="max", **kw)
