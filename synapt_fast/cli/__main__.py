"""`python -m synapt_fast.cli`: the same app as the `synapt-fast` script."""

from synapt_fast.cli import app

app()
