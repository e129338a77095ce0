"""What every video classifier in the zoo shares: its input contract, its classifier, and a
frozen-backbone switch that survives `model.train()`.

Input layout convention (the loader and trainer read `model.input_layout`):

- ``"NCTHW"``: 3D CNNs (I3D, R(2+1)D) — channels before time, as `nn.Conv3d` wants.
- ``"NTCHW"``: TSN and TimeSformer — frames before channels, so that a reshape to
  ``(N*T, C, H, W)`` yields per-frame images without a copy.

`model.num_frames` and `model.image_size` give the clip size the model was built for, and
`model.input_shape(batch)` the full tensor shape in that layout.
"""

from __future__ import annotations

import torch
import torch.nn as nn

LAYOUTS = ("NCTHW", "NTCHW")


class VideoClassifier(nn.Module):
    """Base class: subclasses set the attributes below and implement `forward_features` /
    `forward` so that, in eval mode, ``forward(x) == forward_head(forward_features(x))``."""

    input_layout: str  # one of LAYOUTS
    family: str  # "tsn" | "i3d" | "r2plus1d" | "timesformer"
    classifier_name: str  # attribute holding the final nn.Linear ("fc" for CNNs, "head" for ViTs)

    def __init__(self, *, num_frames: int, image_size: int, dropout: float):
        super().__init__()
        self.num_frames = num_frames
        self.image_size = image_size
        self.dropout = nn.Dropout(dropout)
        self.backbone_frozen = False

    # --- input contract -------------------------------------------------------------------
    def input_shape(self, batch_size: int, channels: int = 3) -> tuple[int, ...]:
        """Shape of a clip batch this model expects, in its `input_layout`."""
        t, s = self.num_frames, self.image_size
        if self.input_layout == "NCTHW":
            return (batch_size, channels, t, s, s)
        return (batch_size, t, channels, s, s)

    # --- classifier -----------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        """Width of the clip feature that `forward_features` returns."""
        return self.get_classifier().in_features

    @property
    def num_classes(self) -> int:
        return self.get_classifier().out_features

    def get_classifier(self) -> nn.Linear:
        return getattr(self, self.classifier_name)

    def reset_classifier(self, num_classes: int) -> nn.Linear:
        """Replace the classifier by a freshly initialised `num_classes`-way one and return it."""
        old = self.get_classifier()
        new = nn.Linear(old.in_features, num_classes).to(device=old.weight.device, dtype=old.weight.dtype)
        self.init_classifier(new)
        setattr(self, self.classifier_name, new)
        return new

    def init_classifier(self, fc: nn.Linear) -> None:
        """How this family initialises a new classifier (overridden per family)."""
        nn.init.normal_(fc.weight, 0, 0.001)
        nn.init.zeros_(fc.bias)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Clip features ``(N, num_features)`` -> logits ``(N, num_classes)``: dropout, classifier."""
        return self.get_classifier()(self.dropout(features))

    # --- frozen backbone (linear probing) ---------------------------------------------------
    def head_modules(self) -> list[nn.Module]:
        """Modules that keep training when the backbone is frozen."""
        return [self.get_classifier(), self.dropout]

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Stop gradients into everything but the classifier and keep the backbone in eval mode
        (BatchNorm statistics, drop-path and dropout inside it) even under `model.train()`."""
        self.backbone_frozen = frozen
        head_params = {id(p) for m in self.head_modules() for p in m.parameters()}
        for p in self.parameters():
            p.requires_grad_(not frozen or id(p) in head_params)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.backbone_frozen:
            # Why: a frozen feature extractor must be deterministic and must not drift its
            # BatchNorm running statistics towards the probing data.
            head = {id(m) for h in self.head_modules() for m in h.modules()}
            for m in self.modules():
                if m is not self and id(m) not in head:
                    m.training = False
        return self


def init_resnet_weights(model: nn.Module) -> None:
    """He-normal convolutions, unit/zero BatchNorm: the torchvision/IBM ResNet initialisation,
    for 2D and 3D networks alike."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
