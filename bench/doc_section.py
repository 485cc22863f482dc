"""One benchmark's section of docs/benchmarks.md, replaced in place or appended."""

from __future__ import annotations

from pathlib import Path


def write_section(doc: Path, title: str, body: str) -> None:
    """Write ``body`` (which starts with the ``title`` heading) into ``doc``.

    An existing section is replaced where it stands, up to the next ``## `` heading or the
    next generated section's marker (an HTML comment), both of which are kept; a new one
    is appended.
    """
    existing = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if title in existing:
        start = existing.index(title)
        ends = [existing.find(m, start + len(title)) for m in ("\n## ", "\n<!-- ")]
        nxt = min((e for e in ends if e != -1), default=-1)
        rest = existing[nxt + 1 :] if nxt != -1 else ""
        doc.write_text(existing[:start] + body.rstrip("\n") + "\n\n" + rest)
        return
    doc.write_text(existing.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n")
