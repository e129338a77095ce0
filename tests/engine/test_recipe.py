"""Recipes: schema checks that name the key, overrides, round trips, and the committed recipe files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from synapt_fast.models import list_models
from synapt_fast.engine.recipe import RecipeError, dumps, from_dict, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def minimal(**sections) -> dict:
    table = {
        "data": {"train": "shards/a/train", "val": "shards/a/val", "batch_size": 8},
        "model": {"name": "tsn_tiny", "mode": "pretrain"},
        "optim": {"lr": 0.01, "epochs": 2},
        "output": {"name": "run"},
    }
    for k, v in sections.items():
        if isinstance(v, dict):
            table.setdefault(k, {}).update(v)
        else:
            table[k] = v
    return table


def test_minimal_recipe_gets_defaults():
    r = from_dict(minimal())
    assert r.optim.momentum == 0.9 and r.model.dropout == 0.5 and r.precision == "fp32"
    assert r.data.sampling == "segments" and r.eval.crops == 1 and r.run_dir() == Path("runs/run")


@pytest.mark.parametrize("table, key", [
    (minimal(data={"bogus": 1}), "data.bogus"),
    (minimal(colour="red"), "colour"),
    (minimal(data={"batch_size": "8"}), "data.batch_size"),
    (minimal(data={"batch_size": 8.0}), "data.batch_size"),
    (minimal(data={"flip": 1}), "data.flip"),
    (minimal(optim={"lr": "0.1"}), "optim.lr"),
    (minimal(seed=True), "seed"),
    (minimal(precision="fp8"), "precision"),
    (minimal(data={"sampling": "random"}), "data.sampling"),
    (minimal(data={"batch_size": 0}), "data.batch_size"),
    (minimal(eval={"crops": 5}), "eval.crops"),
    (minimal(optim={"lr": -1.0}), "optim.lr"),
    (minimal(model={"mode": "finetune"}), "model.init"),
    (minimal(model={"mode": "scratch", "init": "x.pth"}), "model.init"),
    (minimal(model={"dropout": 1.0}), "model.dropout"),
    (minimal(optim={"warmup_epochs": 3.0}), "optim.warmup_epochs"),
    (minimal(model="tsn_tiny"), "model"),
    (minimal(model={"name": "tsn_r5O"}), "model.name"),
    (minimal(data={"resize_ratio": 0.0}), "data.resize_ratio"),
    (minimal(data={"resize_ratio": 1.5}), "data.resize_ratio"),
    (minimal(optim={"lr": float("nan")}), "optim.lr"),
    (minimal(optim={"lr": float("inf")}), "optim.lr"),
    (minimal(output={"checkpoint_minutes": float("nan")}), "output.checkpoint_minutes"),
    (minimal(output={"name": "../../x"}), "output.name"),
    (minimal(output={"name": "/tmp/x"}), "output.name"),
    (minimal(output={"name": "sweep/../../x"}), "output.name"),
    (minimal(optim={"schedule": "linear"}), "optim.schedule"),
    (minimal(optim={"schedule": "step"}), "optim.step_epochs"),
    (minimal(optim={"schedule": "step", "step_epochs": [1.0, 1.0]}), "optim.step_epochs"),
    (minimal(optim={"schedule": "step", "step_epochs": [2.0]}), "optim.step_epochs"),
    (minimal(optim={"schedule": "step", "step_epochs": [1], "step_factor": 2.0}), "optim.step_factor"),
    (minimal(optim={"step_epochs": [1.0]}), "optim.step_epochs"),
    (minimal(optim={"step_epochs": 1.0}), "optim.step_epochs"),
    (minimal(optim={"schedule": "step", "step_epochs": ["1"]}), "optim.step_epochs"),
])
def test_errors_name_the_key(table, key):
    with pytest.raises(RecipeError, match=rf"^{re.escape(key)}\b"):
        from_dict(table)


def test_missing_required_key_is_named():
    table = minimal()
    del table["optim"]["epochs"]
    with pytest.raises(RecipeError, match=r"^optim\.epochs: required"):
        from_dict(table)


def test_overrides_are_typed_and_checked():
    r = from_dict(minimal(), ["optim.lr=0.02", "data.flip=false", "epochs=5", "seed=3", "precision=bf16",
                              "model.init=", "output.name=other"])
    assert (r.optim.lr, r.data.flip, r.optim.epochs, r.seed, r.precision) == (0.02, False, 5, 3, "bf16")
    assert isinstance(r.optim.lr, float) and r.output.name == "other"
    for item, key in [("data.batch_size=eight", "data.batch_size"), ("optim.nope=1", "optim.nope"),
                      ("nosuch.lr=1", "nosuch.lr"), ("batch_size=4", "batch_size"), ("lr", "override"),
                      ("precision=fp8", "precision"), ("data.flip=maybe", "data.flip")]:
        with pytest.raises(RecipeError, match=rf"^{re.escape(key)}\b"):
            from_dict(minimal(), [item])


def test_nan_overrides_and_step_lists_are_checked():
    for item, key in [("optim.lr=nan", "optim.lr"), ("checkpoint_minutes=nan", "output.checkpoint_minutes"),
                      ("data.resize_ratio=0", "data.resize_ratio"), ("output.name=../../x", "output.name"),
                      ("model.name=nosuch", "model.name")]:
        with pytest.raises(RecipeError, match=rf"^{re.escape(key)}\b"):
            from_dict(minimal(), [item])
    r = from_dict(minimal(optim={"epochs": 15}), ["optim.schedule=step", "optim.step_epochs=11,14"])
    assert r.optim.step_epochs == [11.0, 14.0] and from_dict(tomllib.loads(dumps(r))) == r
    assert from_dict(minimal(), ["output.name=sweep/lr0.1"]).run_dir() == Path("runs/sweep/lr0.1")


def test_dumps_round_trips():
    r = from_dict(minimal(optim={"clip_grad_norm": 40}), ["model.pretrained_on=synthetic \"150\""])
    assert from_dict(tomllib.loads(dumps(r))) == r


def test_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "tsn_tiny_4x1_demo_pretrain.toml"
    table = minimal()
    del table["output"]
    path.write_text(dumps(from_dict(minimal())).replace('name = "run"', 'name = ""'))
    assert load_recipe(path).output.name == "tsn_tiny_4x1_demo_pretrain"
    path.write_text("[data\n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(path)


# --- the committed recipes --------------------------------------------------------------------

FILES = sorted(RECIPES.glob("*.toml"))
PAPER_MODELS = {"tsn_r50": "8x1", "i3d_r50": "8x8", "r2plus1d_r50": "8x8", "timesformer_b16": "8x32"}
DOWNSTREAM = ("ucf101", "hmdb51", "mini_ssv2", "diving48", "ikea_fa", "uav_human")
SOURCES = ("synthetic150", "kinetics150")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_recipe_file_parses_and_names_a_registered_model(path):
    r = load_recipe(path)
    assert r.model.name in list_models()
    assert r.output.name == path.stem
    assert path.stem.startswith(r.model.name + "_")
    # The name says the frames, the mode and the data.
    frames = re.search(r"_(\d+)x(\d+)_", path.stem)
    assert frames and int(frames.group(1)) == r.data.num_frames
    assert r.data.train.endswith("/train") and r.data.val.rstrip("/").rsplit("/", 1)[-1] in ("val", "test")
    assert r.model.mode.replace("linear_probe", "lp").replace("finetune", "ft") in path.stem or (
        r.model.mode in ("pretrain", "scratch") and r.model.mode in path.stem)


def test_every_paper_cell_has_a_recipe():
    names = {p.stem for p in FILES}
    missing = []
    for model, frames in PAPER_MODELS.items():
        for source in SOURCES:
            missing += [n for n in [f"{model}_{frames}_{source}_pretrain"] if n not in names]
            for task in DOWNSTREAM:
                for mode in ("ft", "lp"):
                    n = f"{model}_{frames}_{source}_{mode}-{task}"
                    if n not in names:
                        missing.append(n)
        for task in DOWNSTREAM:
            n = f"{model}_{frames}_scratch-{task}"
            if n not in names:
                missing.append(n)
    # Table 4: TimeSformer pre-trained on Moments in Time (150 classes), transferred to every task.
    missing += [n for n in ["timesformer_b16_8x32_mit150_pretrain"] if n not in names]
    missing += [n for task in DOWNSTREAM for mode in ("ft", "lp")
                if (n := f"timesformer_b16_8x32_mit150_{mode}-{task}") not in names]
    for source in SOURCES:
        missing += [n for n in [f"tsn_r50_16x1_{source}_pretrain"] if n not in names]
        for task in DOWNSTREAM:
            n = f"tsn_r50_16x1_{source}_ft-{task}"
            if n not in names:
                missing.append(n)
    assert not missing, missing


def test_timesformer_recipes_follow_the_reference_8x32_config():
    """facebookresearch/TimeSformer TimeSformer_divST_8x32_224: not the CNN schedule."""
    tf = [p for p in FILES if p.stem.startswith("timesformer_b16_")]
    assert len(tf) == 45
    for path in tf:
        r = load_recipe(path)
        assert (r.optim.lr, r.optim.weight_decay, r.optim.epochs, r.optim.momentum) == (0.005, 1e-4, 15, 0.9), path.stem
        assert (r.optim.schedule, r.optim.step_epochs, r.optim.step_factor) == ("step", [11.0, 14.0], 0.1)
        assert (r.data.sampling, r.data.num_frames, r.data.interval, r.data.train_crop) == ("dense", 8, 32, "jitter")
        assert (r.eval.num_clips, r.eval.crops) == (1, 3)
    for path in FILES:  # and the CNN recipes sample as IBM's code does
        r = load_recipe(path)
        if not path.stem.startswith("timesformer"):
            assert r.data.sampling_style == "ibm" and r.optim.schedule == "cosine", path.stem


def test_transfer_recipes_start_from_their_pretraining_run():
    for path in FILES:
        r = load_recipe(path)
        if r.model.mode in ("finetune", "linear_probe"):
            source = re.search(r"_\d+x\d+_([a-z0-9]+)_(ft|lp)-", path.stem).group(1)
            frames = re.search(r"_(\d+x\d+)_", path.stem).group(1)
            assert f"{r.model.name}_{frames}_{source}_pretrain/model_best.pth.tar" in r.model.init, path.stem
