"""Chart machinery every chart shares: the braille canvas chart and its per-instance series."""
