"""The benchmark suite in CI: `bench all --quick` writes every record (their figures mean little
here), `bench shapes` reads the real recipes, and `bench gpu` refuses cleanly without a GPU."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
PNG = b"\x89PNG\r\n\x1a\n"


def _bench(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _per_repeat_and_median(name: str, r: dict) -> tuple[list, list]:
    """(per-repeat figures, medians) of one record, wherever each benchmark keeps them."""
    if name == "shard":
        return list(r["seconds"].values()), list(r["median_clips_per_s"].values())
    if name == "loader":
        mode = r["lengths"]["3 s"]["segments 8"]
        return [[rate for rate, _ in runs] for runs in mode["runs"].values()], list(mode["clips_per_s"].values())
    if name == "model":
        return [row["step_s"] for row in r["results"]], [row["step_s_median"] for row in r["results"]]
    if name == "gop":
        return [row["per_repeat_cpu_ms_per_clip"] for row in r["results"]], [row["clips_per_s"] for row in r["results"]]
    if name == "train":
        return ([row["per_repeat_trainer_s"] for row in r["results"]],
                [row["trainer_ms_per_step"] for row in r["results"]])
    return ([v for s in r["shapes"].values() for v in s["per_repeat_s"].values()],
            [v for s in r["shapes"].values() for v in s["median_s"].values()])


def test_bench_all_quick_writes_every_record_and_the_summary(tmp_path):
    run_cli("bench", "all", "--quick", "--out-dir", str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quick"] and summary["machine"]["versions"]["torch"]
    expected = ["shard", "loader", "gop", "model", "train", "shapes"]
    assert list(summary["benchmarks"]) == expected
    md = (tmp_path / "summary.md").read_text()
    for name in expected:
        b = summary["benchmarks"][name]
        if name == "shard" and shutil.which("ffmpeg") is None:
            assert "ffmpeg" in b["skipped"]
            continue
        assert {f.rsplit(".", 1)[1] for f in b["files"]} == {"json", "md", "png"}, b
        record = json.loads((tmp_path / b["files"][0]).read_text())
        m = record["machine"]
        assert m["cpu"] and m["cores"] >= 1 and m["memory_gib"] > 0 and isinstance(m["gpus"], list), name
        for lib in ("torch", "av", "numpy", "webdataset", "nvidia-dali-cuda120"):
            assert m["versions"].get(lib), (name, lib)
        per_repeat, medians = _per_repeat_and_median(name, record)
        assert per_repeat and all(len(x) >= 1 and all(v > 0 for v in x) for x in per_repeat), name
        assert medians and all(v > 0 for v in medians), name
        png = tmp_path / b["files"][2]
        assert png.read_bytes().startswith(PNG) and png.stat().st_size > 2000
        assert f"]({png.name})" in (tmp_path / b["files"][1]).read_text()  # the markdown shows the plot
        assert f"[{b['files'][0]}]" in md and b["headline"], name
    assert not list(tmp_path.glob("*.partial*"))

    loader = json.loads((tmp_path / "loader_quick.json").read_text())
    mode = loader["lengths"]["3 s"]["segments 8"]
    assert {"default", "vp9 GOP 32", "vp9 GOP 8", "decode-only", "pyav mp4 long GOP",
            "pyav mp4 GOP 32"} <= set(mode["clips_per_s"])
    assert mode["best_peer_by_rate"] in mode["clips_per_s"] and mode["default_over_best_peer"] > 0
    # The default shards (MJPEG) leave the decoder only the sampled frames; VP9 more.
    work = mode["frames_decoded_per_clip"]
    assert work["default"] == work["sampled"] == 8 < work["vp9 GOP 8"] <= work["vp9 GOP 32"]
    st = loader["storage"]["3 s"]
    assert all(v["bytes_per_s"] > 0 for v in st.values()) and 25 < st["default"]["psnr_db"] < 80
    assert "psnr_db" not in st["mp4long"]  # the source files themselves
    assert len(loader["memory"]["rss_mib_per_epoch"]) == len(loader["memory"]["rss_anon_mib_per_epoch"]) == 2
    assert loader["targets"]
    # The torchcodec peers are measured beside the others, or their absence is recorded with the reason.
    if "torchcodec mp4 GOP 32" in mode["clips_per_s"]:
        assert mode["clips_per_s"]["torchcodec mp4 GOP 32"] > 0 and loader["machine"]["versions"]["torchcodec"]
    else:
        assert "torchcodec" in loader["skipped"]["torchcodec"]

    gop = json.loads((tmp_path / "gop_quick.json").read_text())
    assert {(row["split"], row["format"]) for row in gop["results"]} == {("GOP 8", 3), ("GOP 32", 3),
                                                                         ("GOP 32, format 1", 1)}
    assert set(gop["cut_over_frame_0"]) == {"3 s dense 8x1"}  # format 1 measured beside format 2

    shapes = json.loads((tmp_path / "shapes_quick.json").read_text())
    assert set(shapes["throughput"]) == {"tsn_r50_8x1", "tsn_r50_16x1", "i3d_r50_8x8", "r2plus1d_r50_8x8",
                                         "timesformer_b16_8x32"}
    assert shapes["shapes"]["tsn_r50_16x1"]["measured_clip"][0] == 16  # the recipe's frames, tiny model
    i3d = shapes["throughput"]["i3d_r50_8x8"]
    assert set(i3d) == {"pretrain", "ucf101", "hmdb51", "mini_ssv2", "diving48", "ikea_fa", "uav_human"}
    assert all(v["train_clips_per_s"] > 0 and v["eval_videos_per_s"] > 0 for v in i3d.values())
    lp = shapes["recipes"]["i3d_r50_8x8_synthetic150_lp-ucf101"]
    assert lp["mode"] == "linear_probe" and lp["train_clips_per_s"] == i3d["ucf101"]["linear_probe_train_clips_per_s"]


def test_bench_shapes_reads_the_recipes():
    shapes = _bench("bench_shapes").recipe_shapes()
    assert shapes["i3d_r50_8x8"]["eval_views"] == 9 and shapes["i3d_r50_8x8"]["sampling"] == "dense"
    assert shapes["tsn_r50_16x1"]["num_frames"] == 16 and shapes["timesformer_b16_8x32"]["image_size"] == 224
    assert "pretrain" in shapes["tsn_r50_8x1"]["datasets"] and "uav_human" in shapes["tsn_r50_8x1"]["datasets"]
    assert all(s["model"] in ("tsn_r50", "i3d_r50", "r2plus1d_r50", "timesformer_b16") for s in shapes.values())


def test_bench_shapes_names_a_recipe_with_an_unknown_dataset(tmp_path):
    recipes = BENCH.parent / "recipes"
    shutil.copy(recipes / "i3d_r50_8x8_synthetic150_ft-ucf101.toml", tmp_path / "i3d_r50_8x8_synthetic150_ft-k400.toml")
    with pytest.raises(ValueError, match=r"ft-k400\.toml: dataset 'k400'"):
        _bench("bench_shapes").recipe_shapes(tmp_path)


def test_bench_gpu_plan_covers_codecs_modes_and_models():
    plan = json.loads(run_cli("bench", "gpu", "--plan").stdout)
    assert plan["nvdec"]["codecs"] == ["mjpeg", "vp9", "h264", "hevc"] and plan["nvdec"]["short_sides"] == [128, 256]
    assert plan["loader"]["modes"] == ["segments 8x1", "dense 8x1", "dense 32x2"] and plan["loader"]["decode"] == "gpu"
    assert plan["loader"]["codec"] == "mjpeg" and plan["loader"]["long"]["seconds"] == 10
    assert plan["train"]["precision"] == "bf16" and len(plan["train"]["models"]) == 4
    assert plan["budget_s"] <= 600


def test_bench_gpu_refuses_without_a_gpu(tmp_path):
    if _bench("bench_gpu").gpu_unavailable() is None:
        pytest.skip("a CUDA GPU with DALI is present: the suite would run")
    proc = run_cli("bench", "gpu", "--out-dir", str(tmp_path), check=False)
    assert proc.returncode == 2
    assert "needs a CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing written
