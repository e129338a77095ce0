"""How every command refuses: one red line on stderr and exit status 2."""

from __future__ import annotations

import typer


def fail(message: str) -> typer.Exit:
    """The exit to raise: `raise fail("...")`."""
    from rich.console import Console
    from rich.markup import escape

    # escape: messages name recipe sections like "[optim]", which rich would take for markup
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(2)
