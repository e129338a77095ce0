"""Does a split hold the pixels a recipe's crops need? A warning, naming both numbers, when not.

`synapt-fast shard` packs clips at short side 128 by default (right for the 112² crops of the
loader benchmarks), while the paper's recipes crop 224²: IBM's code resizes the short side to 256
for 224 crops (`data.image_size / data.resize_ratio`), TimeSformer's jitters it in [256, 320]. A
recipe trained on 128-pixel shards still runs, on clips upscaled about 2x, and nothing else says
so. The manifest records the encode settings (`encoding.short_side`); that is what is compared.

    for message in resolution_warnings(recipe, train_manifest, val_manifest):
        print(f"warning: {message}", file=sys.stderr)   # the trainer, rank 0, before the first epoch
"""

from __future__ import annotations

import math

from synapt_fast.loader.transforms import JITTER


def needed_short_side(data) -> int:
    """The short side (pixels) a recipe's `[data]` expects its clips to have before cropping:
    `image_size / resize_ratio` (IBM: 256 for 224), or the top of the jitter range for `jitter`."""
    side = math.ceil(data.image_size / data.resize_ratio - 1e-9)
    if data.train_crop == "jitter":
        side = max(side, math.ceil(data.image_size * JITTER[1] - 1e-9))
    return side


def upsampling_warning(data, manifest, key: str) -> str | None:
    """A message when the split behind `key` (data.train / data.val) is encoded smaller than the
    recipe needs; None when it is large enough or kept its sources' sizes (short_side 0, unknown)."""
    have = int((manifest.encoding or {}).get("short_side") or 0)
    need = needed_short_side(data)
    if have == 0 or have >= need:
        return None
    path = data.train if key == "data.train" else data.val
    return (f"{key}: {path} holds clips with short side {have} px (manifest encoding.short_side), but the "
            f"recipe's {data.image_size}² crops expect a short side of {need} px: frames will be upscaled "
            f"{need / have:.1f}x. Shard with `--short-side {need}`, or lower data.image_size.")


def resolution_warnings(recipe, train_manifest, val_manifest) -> list[str]:
    """The warnings for a recipe's training and validation splits (empty when both hold enough)."""
    found = [upsampling_warning(recipe.data, train_manifest, "data.train"),
             upsampling_warning(recipe.data, val_manifest, "data.val")]
    return [m for m in found if m]
