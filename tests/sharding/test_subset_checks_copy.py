"""`subset` copies members byte for byte, so it must check the bytes it copies."""

from __future__ import annotations

import json
import shutil

import pytest

from synapt_fast.sharding.subsets import SubsetError, read_split

from ..conftest import run_cli


def _corrupt_copy(vp9_split, tmp_path):
    src = tmp_path / "shards" / "demo" / "train"
    shutil.copytree(vp9_split, src)
    tar = src / json.loads((src / "manifest.json").read_text())["shards"][0]["tar"]
    data = bytearray(tar.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: the quick check alone does not see it
    tar.write_bytes(bytes(data))
    return src, tar


def test_subset_refuses_a_split_whose_tar_fails_its_checksum(vp9_split, tmp_path):
    src, tar = _corrupt_copy(vp9_split, tmp_path)
    with pytest.raises(SubsetError, match="sha256 does not match") as e:
        read_split(src)
    assert str(tar) in str(e.value)
    out = tmp_path / "shards" / "small" / "train"
    proc = run_cli("subset", str(src), str(out), "--classes", "2", check=False)
    assert proc.returncode == 2 and "sha256 does not match" in proc.stderr and tar.name in proc.stderr
    assert not out.exists() and not out.with_name("train.partial").exists()


def test_subset_of_an_intact_split_still_works(vp9_split, tmp_path):
    out = tmp_path / "shards" / "small" / "train"
    run_cli("subset", str(vp9_split), str(out), "--classes", "2")
    assert run_cli("verify", str(out)).returncode == 0
