"""Messages from the training thread to the UI.

The trainer calls its observers on the training thread; they only post these (post_message is
thread-safe) and never touch widgets. Progress is coalescible: if the UI is behind, a newer
progress message replaces an unprocessed older one, so a fast run can't flood the queue.
"""

from __future__ import annotations

from textual.message import Message

from engine.trainer import Trainer


class TrainingProgress(Message):
    """New steps or history since the last one (sent at most every ~150 ms)."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress) and message.trainer is self.trainer


class TrainerStateChanged(Message):
    """trainer.state became `state` (never coalesced: done or diverged must be seen)."""

    def __init__(self, trainer: Trainer, state: str) -> None:
        super().__init__()
        self.trainer = trainer
        self.state = state
