"""Where sessions live unless told otherwise, and the name of their record; torch-free, so
quick commands (`ps`) can read them."""

from pathlib import Path

SESSIONS_ROOT = Path("sessions")
RECORD_FILE = "session.json"  # a session's record (engine.session writes and checks it)
MAX_RECORD_BYTES = 1 << 20  # a session record is a few kB; anything huge is not ours
