"""``python -m atrium`` is the ``atrium`` command."""

from atrium.cli import app

app()
