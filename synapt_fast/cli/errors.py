"""How every command refuses: one red line on stderr and exit status 2."""

from __future__ import annotations

import typer


def plain(console, text: str) -> None:
    """Print text that names files or quotes inputs exactly as it is: no markup, no emoji codes."""
    console.print(text, markup=False, emoji=False, highlight=False)


def fail(message: str) -> typer.Exit:
    """The exit to raise: `raise fail("...")`."""
    from rich.console import Console
    from rich.markup import escape

    # escape: messages name recipe sections like "[optim]", which rich would take for markup;
    # emoji=False: "list.csv:100:" would print as an emoji
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False, emoji=False)
    return typer.Exit(2)
