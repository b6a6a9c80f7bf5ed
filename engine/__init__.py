"""toygeom engine: train toy models of superposition and measure their feature geometry.

A library, usable from a notebook; it never imports textual.

    from engine import Trainer, preset
    trainer = Trainer(preset("pentagon"))
    trainer.run()
"""

from engine.config import PRESETS, ConfigError, RunConfig, load_toml, preset, save_toml

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ConfigError",
    "RunConfig",
    "Trainer",
    "__version__",
    "load_toml",
    "preset",
    "save_toml",
]


def __getattr__(name: str):  # the trainer pulls in geometry; import it on first use
    if name == "Trainer":
        from engine.trainer import Trainer

        return Trainer
    raise AttributeError(name)
