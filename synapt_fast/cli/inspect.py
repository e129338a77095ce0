"""`verify` and `inspect`: what a shard split holds, and whether it is intact."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from synapt_fast.cli.errors import fail, plain


def verify(
    path: Path = typer.Argument(..., help="A split folder, or a set folder holding split folders."),
    decode: bool = typer.Option(False, "--decode", help="Also decode every clip with DALI and check frame counts."),
):
    """Check shards against manifest and index: sizes, sha256, tar structure, members, frame counts."""
    from rich.console import Console
    from rich.markup import escape

    from synapt_fast.format.verify import ShardError, split_dirs, verify_split

    console = Console()
    try:
        dirs = split_dirs(path)
    except ShardError as e:
        raise fail(str(e))
    bad = 0
    for d in dirs:
        manifest, problems = verify_split(d, decode=decode)
        if problems:
            bad += 1
            console.print(f"[red]FAIL[/red] {escape(str(d))}", highlight=False, emoji=False)
            for p in problems:
                plain(console, f"  {p}")
        else:
            what = " and decoded" if decode else ""
            console.print(f"[green]ok[/green]   {escape(str(d))}: {manifest.num_samples} samples in "
                          f"{len(manifest.shards)} shards checked{what}", highlight=False, emoji=False)
    if bad:
        raise typer.Exit(1)


def inspect(
    path: Path = typer.Argument(..., help="A split folder, or a set folder holding split folders."),
    contact_sheet: Optional[Path] = typer.Option(None, help="Write a PNG of a few clips here."),
    clips: int = typer.Option(6, help="Clips on the contact sheet."),
):
    """Print a shard split's manifest summary; optionally a contact-sheet PNG of a few clips."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from synapt_fast.format.manifest import Manifest, ManifestError
    from synapt_fast.format.verify import ShardError, split_dirs

    console = Console()
    try:
        dirs = split_dirs(path)
        manifests = [(d, Manifest.load(d)) for d in dirs]
    except (ShardError, ManifestError) as e:
        raise fail(str(e))
    for d, m in manifests:
        table = Table(title=Text(f"{m.set}/{m.split}  ({d})"), show_header=False)
        enc = m.encoding
        counts = sorted(m.class_counts.values())
        rows = [("samples", m.num_samples), ("classes", len(m.class_names)),
                ("per class (min/median/max)", f"{counts[0]}/{counts[len(counts) // 2]}/{counts[-1]}" if counts else "-"),
                ("frames", f"{m.num_frames} ({m.num_frames / max(1, m.num_samples):.1f} per clip)"),
                ("shards", f"{len(m.shards)}, {sum(s.bytes for s in m.shards) / 1e6:.2f} MB"),
                ("encoding", f"{enc['codec']} {enc['pix_fmt']} {enc['fps']:g} fps, short side {enc['short_side']}, "
                             f"GOP {enc['gop']}"),
                ("skipped", len(m.skipped)), ("format", f"{m.format} v{m.format_version}")]
        for k, v in rows:
            table.add_row(k, str(v))
        console.print(table)
        for s in m.skipped[:10]:
            plain(console, f"  skipped {s['id']}: {s['reason']}")
    if contact_sheet:
        from synapt_fast.sharding.contact_sheet import contact_sheet as tile, first_clips, write_png

        d, m = manifests[0]
        notes: list[str] = []
        frames, labels = first_clips(d, m, clips, notes=notes)
        for note in notes:
            plain(console, f"  contact sheet: {note}")
        if not frames:
            raise fail(f"{d}: no clip could be decoded for the contact sheet")
        write_png(contact_sheet, tile(frames, labels))
        plain(console, f"contact sheet of {len(frames)} clips -> {contact_sheet}")
