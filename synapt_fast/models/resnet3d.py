"""I3D-ResNet and R(2+1)D-ResNet, as IBM/action-recognition-pytorch defines them
(`i3d_resnet` and `s3d_resnet`), with the same module tree and state-dict keys.

Shared skeleton: stem conv 3x7x7 stride (1,2,2) + maxpool (1,3,3) stride (1,2,2); four bottleneck
stages; the first block of layer2-4 strides (2,2,2) — or (1,2,2) with `temporal_stride=False`
(IBM's `--without_t_stride`); head: average-pool to (T',1,1), dropout + fc per time step, mean
over T'.

- I3D: every bottleneck conv2 is a full 3x3x3 conv.
- R(2+1)D (IBM's "s3d_resnet"): conv2 is 1x3x3 -> BN -> ReLU -> 3x1x1 (`conv2_t`, `bn2_t`), with
  no mid-channel expansion; `depthwise_temporal=True` is IBM's `--dw_t_conv` (grouped conv2_t).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from synapt_fast.models.common import VideoClassifier, init_resnet_weights
from synapt_fast.models.registry import register_model
from synapt_fast.models.tsn import RESNET_LAYERS


def conv3d(cin: int, cout: int, kernel, stride=1, padding=0, groups: int = 1) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False, groups=groups)


class I3DBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride=(1, 1, 1), downsample=None, **_):
        super().__init__()
        self.conv1 = conv3d(inplanes, planes, 1)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv3d(planes, planes, 3, stride=stride, padding=1)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = conv3d(planes, planes * 4, 1)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.residual(x) + identity)


class R2Plus1DBottleneck(I3DBottleneck):
    """Bottleneck whose 3x3x3 conv is factorised into 1x3x3 spatial then 3x1x1 temporal."""

    def __init__(self, inplanes: int, planes: int, stride=(1, 1, 1), downsample=None,
                 depthwise_temporal: bool = False):
        super().__init__(inplanes, planes, stride, downsample)
        st, sh, sw = stride
        self.conv2 = conv3d(planes, planes, (1, 3, 3), stride=(1, sh, sw), padding=(0, 1, 1))
        self.conv2_t = conv3d(planes, planes, (3, 1, 1), stride=(st, 1, 1), padding=(1, 0, 0),
                              groups=planes if depthwise_temporal else 1)
        self.bn2_t = nn.BatchNorm3d(planes)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.relu(self.bn2_t(self.conv2_t(out)))
        return self.bn3(self.conv3(out))


class ResNet3d(VideoClassifier):
    """3D ResNet video classifier (I3D or R(2+1)D blocks).

    Input: ``NCTHW`` float clips ``(N, 3, T, H, W)``. Output: logits ``(N, num_classes)``.
    """

    input_layout = "NCTHW"
    classifier_name = "fc"

    def __init__(self, num_classes: int, *, block: str = "i3d", layers=RESNET_LAYERS[50],
                 width: int = 64, num_frames: int = 8, image_size: int = 224, dropout: float = 0.5,
                 temporal_stride: bool = True, depthwise_temporal: bool = False):
        super().__init__(num_frames=num_frames, image_size=image_size, dropout=dropout)
        blocks = {"i3d": I3DBottleneck, "r2plus1d": R2Plus1DBottleneck}
        if block not in blocks:
            raise ValueError(f"block must be one of {sorted(blocks)}, not {block!r}")
        if depthwise_temporal and block != "r2plus1d":
            raise ValueError("depthwise_temporal applies to R(2+1)D blocks only")
        self.family = block
        self.temporal_stride = temporal_stride
        self.depthwise_temporal = depthwise_temporal
        Block = blocks[block]
        self.conv1 = conv3d(3, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3))
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        inplanes = width
        for i, n_blocks in enumerate(layers):
            planes = width * 2**i
            stride = (1, 1, 1) if i == 0 else (2 if temporal_stride else 1, 2, 2)
            downsample = None
            if stride != (1, 1, 1) or inplanes != planes * 4:
                downsample = nn.Sequential(conv3d(inplanes, planes * 4, 1, stride=stride),
                                           nn.BatchNorm3d(planes * 4))
            stage = [Block(inplanes, planes, stride, downsample, depthwise_temporal=depthwise_temporal)]
            stage += [Block(planes * 4, planes, depthwise_temporal=depthwise_temporal)
                      for _ in range(1, n_blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            inplanes = planes * 4
        self.fc = nn.Linear(inplanes, num_classes)

        init_resnet_weights(self)
        self.init_classifier(self.fc)  # IBM: normal(0, 0.001) weights, zero bias

    def _time_features(self, x: torch.Tensor) -> torch.Tensor:
        """Spatially pooled features per output time step, ``(N, T', D)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(3, 4)).transpose(1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip features ``(N, D)``: global average over time and space."""
        return self._time_features(x).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Dropout + fc per time step, then the mean over time (IBM head).
        return self.fc(self.dropout(self._time_features(x))).mean(1)


def _variant(block: str, **defaults):
    def build(num_classes: int, **kw) -> ResNet3d:
        return ResNet3d(num_classes, block=block, **{**defaults, **kw})
    return build


_TINY = {"layers": (1, 1, 1, 1), "width": 8, "num_frames": 4, "image_size": 32}


@register_model
def i3d_r50(num_classes: int, **kw) -> ResNet3d:
    """I3D-ResNet-50, temporal stride 2 in layer2-4 (IBM `i3d-resnet-50-ts`), 8x224²."""
    return _variant("i3d")(num_classes, **kw)


@register_model
def i3d_r50_nts(num_classes: int, **kw) -> ResNet3d:
    """I3D-ResNet-50 without temporal stride (IBM `--without_t_stride`)."""
    return _variant("i3d", temporal_stride=False)(num_classes, **kw)


@register_model
def r2plus1d_r50(num_classes: int, **kw) -> ResNet3d:
    """R(2+1)D-ResNet-50 (IBM `s3d-resnet-50-ts`), 8x224²."""
    return _variant("r2plus1d")(num_classes, **kw)


@register_model
def r2plus1d_r50_nts(num_classes: int, **kw) -> ResNet3d:
    """R(2+1)D-ResNet-50 without temporal stride."""
    return _variant("r2plus1d", temporal_stride=False)(num_classes, **kw)


@register_model
def r2plus1d_r50_dw(num_classes: int, **kw) -> ResNet3d:
    """R(2+1)D-ResNet-50 with depthwise temporal convs (IBM `--dw_t_conv`)."""
    return _variant("r2plus1d", depthwise_temporal=True)(num_classes, **kw)


@register_model
def i3d_tiny(num_classes: int, **kw) -> ResNet3d:
    """Tiny I3D for tests and CPU demos: one block per stage, width 8, 4 frames at 32²."""
    return _variant("i3d", **_TINY)(num_classes, **kw)


@register_model
def i3d_tiny_nts(num_classes: int, **kw) -> ResNet3d:
    """Tiny I3D without temporal stride."""
    return _variant("i3d", temporal_stride=False, **_TINY)(num_classes, **kw)


@register_model
def r2plus1d_tiny(num_classes: int, **kw) -> ResNet3d:
    """Tiny R(2+1)D for tests and CPU demos."""
    return _variant("r2plus1d", **_TINY)(num_classes, **kw)


@register_model
def r2plus1d_tiny_dw(num_classes: int, **kw) -> ResNet3d:
    """Tiny R(2+1)D with depthwise temporal convs."""
    return _variant("r2plus1d", depthwise_temporal=True, **_TINY)(num_classes, **kw)
