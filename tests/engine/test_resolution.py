"""The upsampling warning on real shards: the manifest's encode settings against a recipe's crops."""

from __future__ import annotations

from pathlib import Path

import pytest

from synapt_fast.format.manifest import Manifest
from synapt_fast.engine.recipe import from_dict, load_recipe
from synapt_fast.engine.resolution import needed_short_side, resolution_warnings
from synapt_fast.synth.sampleclips import SampleSource
from synapt_fast.sharding.pipeline import ShardOptions, shard_source
from synapt_fast.sharding.transcode import EncodeOptions
from tests.engine.test_recipe import RECIPES, minimal


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("resolution")
    out = {}
    for short in (64, 128):
        out[short] = root / f"s{short}" / "train"
        shard_source(SampleSource(1, 2, 8, 160, 128), out[short], ShardOptions(f"s{short}", "train"),
                     EncodeOptions(short_side=short))
    return out


def test_a_crop_needing_more_pixels_than_the_shards_hold_is_named(splits):
    small, enough = Manifest.load(splits[64]), Manifest.load(splits[128])
    r = from_dict(minimal(data={"train": str(splits[64]), "val": str(splits[128]), "image_size": 112}))
    (message,) = resolution_warnings(r, small, enough)
    assert message.startswith(f"data.train: {splits[64]} holds clips with short side 64 px")
    assert "112² crops expect a short side of 128 px" in message and "--short-side 128" in message
    assert resolution_warnings(from_dict(minimal(data={"image_size": 112})), enough, enough) == []
    # The jitter crop needs the top of its range: 320 for 224, 160 for 112.
    jitter = from_dict(minimal(data={"image_size": 112, "train_crop": "jitter"}))
    assert needed_short_side(jitter.data) == 160 and len(resolution_warnings(jitter, enough, enough)) == 2


def test_the_papers_recipes_need_256_or_more():
    """Every full-size recipe crops 224²: shards at the default 128 would be upscaled."""
    for path in sorted(RECIPES.glob("*.toml")):
        r = load_recipe(path)
        if r.data.image_size == 224:
            assert needed_short_side(r.data) in (256, 320), path.stem
