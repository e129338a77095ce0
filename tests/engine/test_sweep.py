"""Sweeps: the paper's grids, custom grids, job-array scripts, and a real tiny sweep through the trainer."""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
from pathlib import Path

import pytest

from synapt_fast.engine import sweep
from synapt_fast.engine.recipe import RecipeError, load_recipe
from tests.conftest import run_cli

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
PRETRAIN = RECIPES / "tsn_r50_8x1_synthetic150_pretrain.toml"
DOWNSTREAM = RECIPES / "tsn_r50_8x1_synthetic150_ft-ucf101.toml"
DEMO = RECIPES / "tsn_tiny_8x1_demosynth_pretrain.toml"


@pytest.mark.parametrize("preset, recipe, lrs, batches, nproc", [
    ("pretrain", PRETRAIN, [0.01, 0.02], [64, 128], 8),
    ("downstream", DOWNSTREAM, [1e-4, 5e-4, 1e-3], [32, 64], 4),
])
def test_presets_are_the_papers_grids(preset, recipe, lrs, batches, nproc):
    cells = sweep.expand(recipe, sweep.grid_axes(preset), nproc=nproc)
    wds = [1e-4, 5e-4, 1e-3]
    assert len(cells) == len(lrs) * len(batches) * len(wds) == {"pretrain": 12, "downstream": 18}[preset]
    seen = {(c.recipe.optim.lr, c.values["global_batch"], c.recipe.optim.weight_decay) for c in cells}
    assert seen == set(itertools.product(lrs, batches, wds))
    for c in cells:  # the paper's batch is global: each of nproc processes takes its share
        assert c.recipe.data.batch_size * nproc == c.values["global_batch"]
        assert c.recipe.output.name == f"{recipe.stem}/{c.tag}"
    assert len({c.tag for c in cells}) == len(cells)
    assert "lr0.01_bs64_wd0.0001" in {c.tag for c in cells} or preset == "downstream"
    assert cells[0].run_dir.parent == Path("runs") / recipe.stem


def test_custom_grid_fixed_overrides_and_errors():
    cells = sweep.expand(DEMO, sweep.grid_axes(None, ["lr=0.1,0.2", "data.batch_size=4,8"]),
                         overrides=["optim.epochs=3"])
    assert [c.tag for c in cells] == ["lr0.1_bpp4", "lr0.1_bpp8", "lr0.2_bpp4", "lr0.2_bpp8"]
    assert [(c.recipe.optim.lr, c.recipe.data.batch_size) for c in cells] == [(0.1, 4), (0.1, 8), (0.2, 4), (0.2, 8)]
    assert all(c.recipe.optim.epochs == 3 for c in cells)
    with pytest.raises(RecipeError, match=r"optim\.lrx: unknown key"):
        sweep.grid_axes(None, ["optim.lrx=1,2"])
    with pytest.raises(RecipeError, match=r"optim\.lr: expected float"):
        sweep.expand(DEMO, sweep.grid_axes(None, ["optim.lr=0.1,fast"]))
    with pytest.raises(RecipeError, match="both a grid axis and a fixed override"):
        sweep.expand(DEMO, sweep.grid_axes(None, ["optim.lr=0.1,0.2"]), overrides=["optim.lr=0.3"])
    with pytest.raises(RecipeError, match="not divisible by --nproc 3"):
        sweep.expand(PRETRAIN, sweep.grid_axes("pretrain"), nproc=3)
    proc = run_cli("sweep", str(DEMO), "--grid", "optim.lrx=1,2", check=False)
    assert proc.returncode == 2 and "optim.lrx: unknown key" in proc.stderr and "[optim]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_emit_writes_a_job_array(tmp_path):
    jobs = tmp_path / "jobs"
    run_cli("sweep", str(PRETRAIN), "--preset", "pretrain", "--nproc", "8", "--emit", str(jobs), "seed=3", cwd=tmp_path)
    script = (jobs / "sweep.sbatch").read_text()
    assert subprocess.run(["bash", "-n", str(jobs / "sweep.sbatch")]).returncode == 0
    assert "#SBATCH --array=0-11\n" in script and "$SLURM_ARRAY_TASK_ID" in script
    commands = (jobs / "commands.txt").read_text().splitlines()
    assert len(commands) == 12
    # The script's array holds the same commands, in the same order.
    array = script.split("COMMANDS=(\n", 1)[1].split("\n)\n", 1)[0].splitlines()
    assert [shlex.split(line)[0] for line in array] == commands
    tags = set()
    for line in commands:  # each command is a runnable training command for one cell
        argv = shlex.split(line)
        assert argv[:6] == ["python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "8"]
        i = argv.index("--recipe")
        overrides = [a for a in argv[i + 2:] if a != "--resume"]
        r = load_recipe(argv[i + 1], overrides)
        assert r.seed == 3 and r.data.batch_size in (8, 16)
        tags.add(r.output.name)
    assert len(tags) == 12
    assert f"cd {tmp_path}\n" in script
    assert not (tmp_path / "runs").exists()  # nothing ran


# --- a real sweep ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    """2 classes x 4 train / 2 val clips, 8 frames of 32x32 (VP9 shards)."""
    from synapt_fast.synth import build

    root = tmp_path_factory.mktemp("sweep_shards")
    jobs = build.plan(classes=2, clips_per_class=4, val_clips_per_class=2, downstream_classes=0,
                      downstream_clips_per_class=0, downstream_val_clips_per_class=0, biases=[],
                      frames=8, size=32, fps=30.0, seed=0, name="sw")
    build.write(jobs, root, workers=1)
    return root / "sw"


def tiny_overrides(data: Path, runs: Path) -> list[str]:
    """The demo's pre-training recipe made seconds-long: 1 epoch, 4 frames of 32x32."""
    return [f"data.train={data / 'train'}", f"data.val={data / 'val'}", f"output.dir={runs}", "optim.epochs=1",
            "optim.warmup_epochs=0", "data.batch_size=4", "data.num_frames=4", "data.image_size=32",
            "data.shuffle_buffer=8", "eval.every_epochs=1"]


@pytest.mark.slow
def test_real_sweep_records_failures_skips_finished_and_resumes(tiny_set, tmp_path):
    runs = tmp_path / "runs"
    # A model that is not registered is refused before any cell runs, naming the key.
    proc = run_cli("sweep", str(DEMO), *tiny_overrides(tiny_set, runs), "--grid", "model.name=tsn_tiny,no_such_model",
                   check=False)
    assert proc.returncode == 2 and "model.name: unknown model 'no_such_model'" in proc.stderr
    assert "Traceback" not in proc.stderr and not runs.exists()
    # Two models x a validation split that exists and one that does not: two cells train, two fail
    # at run time, and the sweep goes on.
    missing = tiny_set / "no_such_split"
    fixed = [o for o in tiny_overrides(tiny_set, runs) if not o.startswith("data.val=")]
    args = ["sweep", str(DEMO), *fixed, "--grid", "model.name=tsn_tiny,tsn_tiny_tpool_max",
            "--grid", f"data.val={tiny_set / 'val'},{missing}"]
    tag = lambda m, v: sweep.cell_tag({"model.name": m, "data.val": str(v)})  # noqa: E731
    good = {m: tag(m, tiny_set / "val") for m in ("tsn_tiny", "tsn_tiny_tpool_max")}
    bad = {m: tag(m, missing) for m in ("tsn_tiny", "tsn_tiny_tpool_max")}
    proc = run_cli(*args, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"2 cell(s) failed: {bad['tsn_tiny']} (exit " in proc.stderr
    out = runs / DEMO.stem
    record = json.loads((out / "sweep.json").read_text())
    cells = {c["tag"]: c for c in record["cells"]}
    assert list(cells) == [good["tsn_tiny"], bad["tsn_tiny"], good["tsn_tiny_tpool_max"], bad["tsn_tiny_tpool_max"]]
    for failed in (cells[t] for t in bad.values()):
        assert failed["status"] == "failed" and failed["exit_code"] not in (0, None)
        assert "no_such_split" in Path(failed["log"]).read_text()
        assert not (Path(failed["run"]) / "result.json").exists()
    results = {}
    for t in good.values():
        assert cells[t]["status"] == "finished" and cells[t]["exit_code"] == 0
        results[t] = json.loads((out / t / "result.json").read_text())
        assert cells[t]["best_top1"] == results[t]["best_top1"]
        assert results[t]["model"] == cells[t]["values"]["model.name"]
    best = max(results, key=lambda t: (results[t]["best_top1"], results[t]["top1"], -list(cells).index(t)))
    assert record["chosen"]["tag"] == best and record["chosen"]["run"] == str(out / best)
    assert "**chosen**" in (out / "sweep.md").read_text() and "| failed |" in proc.stdout

    # Re-run after a cell lost its result.json (stopped after its last checkpoint): that cell
    # continues with --resume, the other finished cell is not trained again, the failed one is retried.
    kept, stopped = good["tsn_tiny_tpool_max"], good["tsn_tiny"]
    mtime = (out / kept / "result.json").stat().st_mtime_ns
    (out / stopped / "result.json").unlink()
    again = run_cli(*args, check=False)
    assert again.returncode == 2
    record = json.loads((out / "sweep.json").read_text())
    assert [c["status"] for c in record["cells"]] == ["finished", "failed", "skipped", "failed"]
    assert record["cells"][0]["resumed"] is True and record["cells"][2]["message"] == "finished earlier"
    assert (out / kept / "result.json").stat().st_mtime_ns == mtime
    resumed = json.loads((out / stopped / "result.json").read_text())
    assert resumed["steps"] == results[stopped]["steps"] and resumed["best_top1"] == results[stopped]["best_top1"]
    assert record["chosen"]["tag"] == best


def test_seeds_expand_each_grid_point_and_the_choice_is_the_mean(tmp_path):
    cells = sweep.expand(DEMO, sweep.grid_axes(None, ["lr=0.1,0.2"]), seeds=[0, 1],
                         overrides=[f"output.dir={tmp_path}"])
    assert [c.tag for c in cells] == ["lr0.1_seed0", "lr0.1_seed1", "lr0.2_seed0", "lr0.2_seed1"]
    assert [(c.recipe.optim.lr, c.recipe.seed) for c in cells] == [(0.1, 0), (0.1, 1), (0.2, 0), (0.2, 1)]
    with pytest.raises(RecipeError, match="--seeds"):
        sweep.expand(DEMO, sweep.grid_axes(None, ["lr=0.1"]), seeds=[0], overrides=["seed=3"])
    # lr 0.2 has the single best run (0.9) but the lower mean: lr 0.1 is chosen.
    scores = {"lr0.1_seed0": 0.7, "lr0.1_seed1": 0.8, "lr0.2_seed0": 0.9, "lr0.2_seed1": 0.5}
    outcomes = [sweep.CellOutcome(c.index, c.tag, str(c.run_dir), c.values, "finished", best_top1=scores[c.tag],
                                  top1=scores[c.tag], seed=c.seed) for c in cells]
    point = sweep.choose_point(outcomes)
    assert [o.tag for o in point] == ["lr0.1_seed0", "lr0.1_seed1"]
    mean, std = sweep.spread(point)
    assert mean == pytest.approx(0.75) and std == pytest.approx(0.0707107, rel=1e-5)
    # A point with a failed seed is not comparable: the other one is chosen.
    outcomes[1].status = "failed"
    assert [o.tag for o in sweep.choose_point(outcomes)] == ["lr0.2_seed0", "lr0.2_seed1"]
    assert "seed" in sweep.markdown(["optim.lr"], outcomes, point).splitlines()[0]


def test_a_wrong_typed_result_is_a_failed_cell_naming_file_and_key(tmp_path):
    (cell,) = sweep.expand(DEMO, sweep.grid_axes(None, ["lr=0.1"]), overrides=[f"output.dir={tmp_path}"])
    cell.run_dir.mkdir(parents=True)
    (cell.run_dir / "result.json").write_text(json.dumps({"best_top1": "0.9", "top1": 0.8, "hyper_parameters": {}}))
    outcome = sweep.run_cell(cell, 1, tmp_path / "logs")
    assert outcome.status == "failed"
    assert outcome.message == f"{cell.run_dir / 'result.json'}: best_top1: expected a finite number, got str '0.9'"
    (cell.run_dir / "result.json").write_text(json.dumps({"best_top1": 0.9, "hyper_parameters": [1]}))
    assert "hyper_parameters: expected an object" in sweep.run_cell(cell, 1, tmp_path / "logs").message
    assert sweep.choose([outcome]) is None
