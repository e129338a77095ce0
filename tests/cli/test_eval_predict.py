"""`synapt-fast eval`, `predict` and `plot` on a trained tiny run: eval at the recipe's views gives
the trainer's last validation, test-time views change the view count, a raw mp4 scores as its
shard does, and the curves are drawn from metrics.jsonl."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from synapt_fast.synth.sampleclips import make_folder
from tests.conftest import run_cli
from tests.engine.test_train import records, recipe_file, reference_run, tiny_sets  # noqa: F401

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


def _eval(run: Path, checkpoint: str, out: Path) -> dict:
    run_cli("eval", str(run / "recipe.toml"), "--checkpoint", str(run / checkpoint), "--out", str(out))
    return json.loads((out / "eval.json").read_text())


def test_eval_at_the_recipes_views_gives_the_trainers_validation(reference_run, tmp_path):
    last = _eval(reference_run, "checkpoint.pth.tar", tmp_path / "last")
    evals = records(reference_run, "eval")
    for key in ("top1", "top5", "clip_top1", "clip_top5", "videos", "views"):
        assert last[key] == pytest.approx(evals[-1][key], abs=1e-9), key
    assert last["clips_per_s"] > 0 and last["world_size"] == 1
    # model_best.pth.tar against the best epoch's validation, which confusion.json holds.
    best = _eval(reference_run, "model_best.pth.tar", tmp_path / "best")
    trained = json.loads((reference_run / "confusion.json").read_text())
    at_best = next(e for e in evals if e["epoch"] == trained["epoch"])
    assert best["top1"] == pytest.approx(at_best["top1"], abs=1e-9)
    confusion = json.loads((tmp_path / "best" / "confusion.json").read_text())
    assert confusion == {"class_names": trained["class_names"], "matrix": trained["matrix"]}
    assert best["per_class_top1"] == trained["per_class_top1"]
    assert (tmp_path / "best" / "confusion.png").read_bytes().startswith(PNG)


def test_test_time_views_are_separate_from_the_training_ones(reference_run):
    run_cli("eval", str(reference_run / "recipe.toml"), "--checkpoint", str(reference_run / "model_best.pth.tar"),
            "--crops", "3")
    got = json.loads((reference_run / "eval" / "tp_val_1x3" / "eval.json").read_text())
    assert got["views"] == 3 and got["crops"] == 3 and got["videos"] == 9  # TSN: one clip, three crops


def test_eval_refuses_what_it_cannot_use(reference_run, tmp_path):
    ckpt = str(reference_run / "checkpoint.pth.tar")
    proc = run_cli("eval", str(reference_run / "recipe.toml"), "--checkpoint", str(tmp_path / "none.pth"), check=False)
    assert proc.returncode == 2 and "no such checkpoint" in proc.stderr
    proc = run_cli("eval", str(reference_run / "recipe.toml"), "--checkpoint", ckpt, "--crops", "4", check=False)
    assert proc.returncode == 2 and "--crops" in proc.stderr
    proc = run_cli("eval", str(reference_run / "recipe.toml"), "--checkpoint", ckpt, "model.name=tsn_r50", check=False)
    assert proc.returncode == 2 and "model.name" in proc.stderr


def _shard_ids(split: Path) -> dict[str, int]:
    """Source file id -> position in the split, from each sample's meta.json."""
    ids = {}
    for tar in sorted(split.glob("*.tar")):
        with tarfile.open(tar) as tf:
            members = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
        for name, data in members.items():
            if name.endswith(".meta.json"):
                key = name[: -len(".meta.json")]
                ids[json.loads(data)["id"]] = int.from_bytes(members[f"{key}.pos.i32"], "little")
    return ids


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_predict_scores_a_raw_mp4_as_its_shard(reference_run, tmp_path):
    raw = make_folder(tmp_path / "raw", num_classes=3, per_class=2, seconds=1.0, fps=25.0)  # H.264 mp4
    run_cli("shard", str(raw), "--set", "raw", "--split", "val", "--out", str(tmp_path / "shards"))
    split = tmp_path / "shards" / "raw" / "val"
    ckpt = str(reference_run / "model_best.pth.tar")
    files = sorted(raw.rglob("*.mp4"))
    from_files = {Path(r["source"]).relative_to(raw).as_posix(): r
                  for r in _lines(run_cli("predict", ckpt, *map(str, files), "--topk", "3").stdout)}
    # The same sampling and crops from the shard, through the loader whose math predict reuses.
    from_shard = _lines(run_cli("predict", ckpt, "--split", str(split), "--topk", "3",
                                "--set", "data.backend=reference").stdout)
    ids = _shard_ids(split)
    assert len(from_files) == len(from_shard) == len(ids) == 6
    for name, pos in ids.items():
        a, b = from_files[name], from_shard[pos]
        assert b["source"] == f"{split}:{pos}" and b["label"] == name.split("/")[0]
        assert a["top1"] == b["top1"], (name, a, b)
        for cls, p in a["scores"].items():
            assert p == pytest.approx(b["scores"][cls], abs=0.02), (name, cls)
    table = run_cli("predict", ckpt, str(files[0]), "--format", "table").stdout
    assert files[0].name in table and from_files[files[0].relative_to(raw).as_posix()]["top1"] in table


def test_predict_skips_an_unreadable_file_and_scores_the_rest(reference_run, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    good = make_folder(tmp_path / "raw", num_classes=1, per_class=1) / "class_00" / "clip_000.mp4"
    proc = run_cli("predict", str(reference_run / "model_best.pth.tar"), str(bad), str(good), check=False)
    assert proc.returncode == 1 and "broken.mp4" in proc.stderr
    assert [r["source"] for r in _lines(proc.stdout)] == [str(good)]
    proc = run_cli("predict", str(reference_run / "model_best.pth.tar"), str(good), "--set", "data.nope=1", check=False)
    assert proc.returncode == 2 and "data.nope: unknown key" in proc.stderr


def test_plot_draws_the_curves_of_several_runs(reference_run, tmp_path):
    out = tmp_path / "curves.png"
    run_cli("plot", str(reference_run), str(reference_run), "--out", str(out))
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 5000
    proc = run_cli("plot", str(tmp_path), check=False)
    assert proc.returncode == 2 and "no metrics.jsonl" in proc.stderr
