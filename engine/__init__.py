"""toygeom engine: train toy models of superposition and measure their feature geometry.

A library, usable from a notebook; it never imports textual.

    from engine import Trainer, preset
    trainer = Trainer(preset("pentagon"))
    trainer.run()
"""

__version__ = "0.3.0"

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

_CONFIG = ("PRESETS", "ConfigError", "RunConfig", "load_toml", "preset", "save_toml")


def __getattr__(name: str):
    # Imported on first use: both pull in torch, which a torch-free command (`ps`) never needs.
    if name in _CONFIG:
        from engine import config

        return getattr(config, name)
    if name == "Trainer":
        from engine.trainer import Trainer

        return Trainer
    raise AttributeError(name)
