"""The last run of each scheduled job, as ``atrium jobs status`` and ``/metrics`` show it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base


class JobRun(Base):
    """One row per scheduled job (``name``), updated by the leader after each pass:
    when it last ran, how long it took (seconds), its outcome (``ok`` or ``error``) and
    the last error's text; ``runs`` and ``failures`` count every pass."""

    __tablename__ = "job_run"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_run_at: Mapped[datetime]
    duration_seconds: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(String(1000))
    runs: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
