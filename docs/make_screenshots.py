"""Render the README's screenshots from a saved session (the default run).

toygeom-tui train --out sessions/fg
python docs/make_screenshots.py sessions/fg
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from engine.session import load_session
from toygeom_tui.app import ToygeomApp

HERE = Path(__file__).parent


async def main(session: Path, instance: int = 10) -> None:
    app = ToygeomApp(load_session(session, compiled=False), session_dir=session, autostart=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(1.0)
        for _ in range(instance):
            await pilot.press("j")
        await pilot.pause(1.0)
        app.save_screenshot(str(HERE / "dashboard.svg"))
        await pilot.press("enter")
        await pilot.pause(2.0)
        app.save_screenshot(str(HERE / "instance-detail.svg"))
        await pilot.press("D", "[", "[", "[")  # instance 7: features joining antipodal pairs
        await pilot.pause(1.0)
        app.save_screenshot(str(HERE / "dynamics.svg"))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
