"""The explanation page renders in headless Chromium as a coloured page, not a blank one.

Skipped when no Chromium/Chrome binary is installed (CI installs Debian's ``chromium``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from crossrank.evaluation.explain import IGConfig, explain_pair, write_pair_html
from crossrank.inference import CrossEncoder
from crossrank.models.tiny import build_tiny_checkpoint

Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to read the screenshot")

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
QUERY = "what is the effect of protein on cancer cells"
DOC = (
    "The study results show a protein effect in cancer cells. Cats and dogs rank long text. "
    "Blood gene search model. Short words in a passage."
)


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no headless browser found (looked for {', '.join(BROWSERS)})")


def _screenshot(browser: str, page: Path, tmp_path: Path) -> np.ndarray:
    png = tmp_path / "shot.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1200,900",
        page.resolve().as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp_path)}  # the browser writes its caches under HOME
    # check=False: a failed run is reported with its stderr by the assertion below.
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=120, env=env
    )
    assert png.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    with Image.open(png) as image:
        return np.asarray(image.convert("RGB")).astype(np.int64)


def test_page_screenshot_shows_coloured_heatmaps(tmp_path: Path) -> None:
    browser = _browser()
    encoder = CrossEncoder.from_pretrained(
        build_tiny_checkpoint(tmp_path / "tiny", seed=3), backend="torch", device="cpu"
    )
    explanation = explain_pair(encoder, QUERY, DOC, IGConfig(steps=8))
    page = write_pair_html(tmp_path / "page.html", explanation)
    pixels = _screenshot(browser, page, tmp_path)
    assert pixels.shape[:2] == (900, 1200)
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    assert len(colours) > 50
    assert counts.max() < 0.95 * counts.sum()  # not one background colour
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    reds = np.count_nonzero((r > g + 60) & (r > b + 60))
    blues = np.count_nonzero((b > r + 60) & (b > g + 20))
    purples = np.count_nonzero((r > g + 40) & (b > g + 40))
    # Attribution heat-map (red and blue tokens) and attention grid (purple cells) are drawn.
    assert reds > 200 and blues > 200 and purples > 2000, (reds, blues, purples)
