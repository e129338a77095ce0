"""The demo's wiring: its recipes exist and chain, and its table renders every cell."""

from __future__ import annotations

from rich.console import Console

from synapt_fast import demo
from synapt_fast.engine.recipe import load_recipe


def test_demo_recipes_chain():
    pre = load_recipe(demo.RECIPES / f"{demo.PRETRAIN}.toml")
    assert pre.model.mode == "pretrain" and pre.data.train.endswith("demo_synth/train")
    for task in demo.TASKS:
        for mode, name in demo.DEMO_RECIPES.items():
            r = load_recipe(demo.RECIPES / f"{name.format(task=task)}.toml")
            assert r.model.name == pre.model.name and r.data.train.endswith(f"{task}/train")
            assert r.model.mode == {"FT": "finetune", "LP": "linear_probe", "scratch": "scratch"}[mode]
            if mode != "scratch":
                assert r.model.init == f"{pre.output.dir}/{demo.PRETRAIN}/model_best.pth.tar"


def test_table_1_shows_every_cell():
    results = {(m, t): {"top1": 0.5 + i / 100, "train_clips_per_s": 100.0 + i}
               for i, (m, t) in enumerate((m, t) for m in demo.DEMO_RECIPES for t in demo.TASKS)}
    console = Console(width=200, record=True)
    console.print(demo.table_1(results, {"dataset": "demo_synth"}, {t: 0.2 for t in demo.TASKS}))
    text = console.export_text()
    for r in results.values():
        assert f"{r['top1']:.3f}" in text and f"{r['train_clips_per_s']:.0f}" in text
    assert "demo_synth FT" in text and "none (scratch)" in text and "chance" in text
