"""Where sessions live unless told otherwise; torch-free, so quick commands (`ps`) can read it."""

from pathlib import Path

SESSIONS_ROOT = Path("sessions")
