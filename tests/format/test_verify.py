"""`synapt-fast verify` and the loader's quick check catch each kind of damage, by file name."""

from __future__ import annotations

import json
import shutil

import pytest

from synapt_fast.format.manifest import Manifest
from synapt_fast.format.verify import ShardError, quick_check, verify_split

from tests.conftest import run_cli


@pytest.fixture()
def split(vp9_split, tmp_path):
    dst = tmp_path / "set" / "train"
    shutil.copytree(vp9_split, dst)
    return dst


def test_clean_split_verifies_and_decodes(split):
    proc = run_cli("verify", str(split.parent), "--decode")
    assert "9 samples in 3 shards checked and decoded" in proc.stdout
    assert quick_check(split).num_samples == 9


def _expect_failure(split, fragment: str, quick: bool = True):
    proc = run_cli("verify", str(split), check=False)
    assert proc.returncode == 1 and fragment in proc.stdout, proc.stdout
    if quick:
        with pytest.raises(ShardError, match=fragment):
            quick_check(split)


def test_truncated_tar(split):
    tar = split / Manifest.load(split).shards[1].tar
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    _expect_failure(split, tar.name)
    with pytest.raises(ShardError, match="truncated"):
        quick_check(split)


def test_flipped_byte_is_a_checksum_mismatch(split):
    tar = split / Manifest.load(split).shards[0].tar
    data = bytearray(tar.read_bytes())
    data[3000] ^= 0xFF
    tar.write_bytes(bytes(data))
    _expect_failure(split, f"{tar.name}: sha256 does not match", quick=False)


def test_stale_index(split):
    shards = Manifest.load(split).shards
    # The index of another shard: right format, wrong offsets for this tar.
    (split / shards[0].index).write_bytes((split / shards[2].index).read_bytes())
    _expect_failure(split, f"{shards[0].index}: index checksum does not match")


def test_missing_tar(split):
    tar = split / Manifest.load(split).shards[2].tar
    tar.unlink()
    _expect_failure(split, f"{tar.name}: missing")


def test_bad_manifest(split):
    manifest = split / "manifest.json"
    d = json.loads(manifest.read_text())
    d["format_version"] = 99
    manifest.write_text(json.dumps(d))
    _expect_failure(split, "format_version 99 is not supported")
    manifest.write_text("{not json")
    _expect_failure(split, "not valid JSON")


def test_verify_split_lists_every_problem(split):
    shards = Manifest.load(split).shards
    (split / shards[0].tar).unlink()
    (split / shards[1].tar).write_bytes(b"")
    _, problems = verify_split(split)
    assert any(shards[0].tar in p for p in problems) and any(shards[1].tar in p for p in problems)


def test_inspect_prints_the_summary_and_writes_a_contact_sheet(vp9_split, tmp_path):
    png = tmp_path / "sheet.png"
    proc = run_cli("inspect", str(vp9_split), "--contact-sheet", str(png), "--clips", "3")
    assert "samples" in proc.stdout and "vp9 yuv420p 30 fps, short side 128" in proc.stdout
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 4 * 170 and height >= 3 * 128  # 3 clips x 4 frames of 170x128


def test_merge_command_combines_part_manifests(clip_folder, tmp_path):
    for part in ("0", "1"):
        run_cli("shard", str(clip_folder), "--set", "m", "--out", str(tmp_path), "--num-parts", "2", "--part", part)
    split = tmp_path / "m" / "train"
    assert not (split / "manifest.json").exists()
    proc = run_cli("merge", str(split))
    assert "9 samples in 2 shards" in proc.stdout
    run_cli("verify", str(split), "--decode")
    missing = tmp_path / "only-one"
    run_cli("shard", str(clip_folder), "--set", "m", "--out", str(missing), "--num-parts", "2", "--part", "0")
    proc = run_cli("merge", str(missing / "m" / "train"), check=False)
    assert proc.returncode == 2 and "need parts 0..1" in proc.stderr
