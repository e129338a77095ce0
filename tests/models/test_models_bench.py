"""`synapt-fast bench model --quick`: runs in seconds and writes both result files."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from synapt_fast.cli import app


def test_bench_model_quick_writes_json_and_markdown(tmp_path):
    threads = torch.get_num_threads()
    result = CliRunner().invoke(app, ["bench", "model", "--quick", "--model", "tsn_tiny",
                                      "--model", "i3d_tiny", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == threads  # the benchmark restores the caller's setting
    record = json.loads((tmp_path / "model.json").read_text())
    assert record["quick"] and record["machine"]["torch"] == torch.__version__
    rows = {(r["model"], r["variant"]): r for r in record["results"]}
    assert set(rows) == {(m, p) for m in ("tsn_tiny", "i3d_tiny") for p in ("fp32", "bf16")}
    for row in rows.values():
        assert "error" not in row, row
        assert row["clips_per_s"] > 0 and row["step_s_min"] <= row["step_s_median"] <= row["step_s_max"]
    assert rows[("tsn_tiny", "fp32")]["speedup_vs_fp32"] == 1.0
    md = (tmp_path / "model.md").read_text()
    assert "| tsn_tiny |" in md and "clips/s" in md and "shared" in md
