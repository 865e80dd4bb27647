"""Render a codeaudit HTML report in headless Chromium, screenshot it and check the screenshot.

    python scripts/render_html_report.py REPORT.html [--screenshot OUT.png]
        [--chromium /usr/bin/chromium] [--width 1280] [--height 2400]
        [--expect-status pass|fail] [--expect-figure]

Checks, on the screenshot (not on the HTML text):
- it is not blank: at least 2% of its pixels differ from the page background;
- with ``--expect-status``: the verdict banner's colour (green for pass, red for fail) is there;
- with ``--expect-figure``: an embedded plot was decoded and drawn (at least 150 pixels of
  matplotlib's first line colour, #1f77b4, which nothing else on the page uses).

Prints one JSON line with the measurements; exit status 0 when every check holds, 1 when one
fails, 2 on bad arguments or when Chromium cannot run. Chromium runs with no network, no GPU, no
sandbox (for containers) and a throw-away profile.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
    "--disable-extensions",
)
PLOT_BLUE = (31, 119, 180)
BANNER = {"pass": (232, 245, 233), "fail": (253, 236, 234)}


def find_chromium(explicit: str | None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, out: Path, chromium: str, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="codeaudit-chromium-") as profile:
        command = [
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if not out.is_file() or out.stat().st_size == 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {tail[0]}")


def measure(png: Path) -> dict[str, float | int]:
    import matplotlib.image

    image = matplotlib.image.imread(str(png))
    rgb = np.round(image[..., :3] * 255).astype(np.int16)
    flat = rgb.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    differs = np.abs(flat - background).max(axis=1) > 12

    def near(colour: tuple[int, int, int], tolerance: int = 6) -> int:
        return int((np.abs(flat - np.array(colour)).max(axis=1) <= tolerance).sum())

    return {
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "colours": len(colours),
        "non_background": round(float(differs.mean()), 4),
        "plot_pixels": near(PLOT_BLUE, 10),
        "pass_banner_pixels": near(BANNER["pass"], 2),
        "fail_banner_pixels": near(BANNER["fail"], 2),
    }


def check(
    stats: dict[str, float | int], expect_status: str | None, expect_figure: bool
) -> list[str]:
    problems = []
    if stats["non_background"] < 0.02 or stats["colours"] < 16:
        problems.append("the screenshot is blank")
    if expect_status and stats[f"{expect_status}_banner_pixels"] < 2000:
        problems.append(f"no {expect_status} verdict banner")
    if expect_figure and stats["plot_pixels"] < 150:
        problems.append("no plot drawn")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--chromium")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--expect-status", choices=("pass", "fail"))
    parser.add_argument("--expect-figure", action="store_true")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"render_html_report.py: error: {args.report}: not found", file=sys.stderr)
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("render_html_report.py: error: chromium not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="codeaudit-shot-") as tmp:
        out = args.screenshot or Path(tmp) / "report.png"
        try:
            screenshot(args.report, out, chromium, args.width, args.height)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            print(f"render_html_report.py: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        stats = measure(out)
    problems = check(stats, args.expect_status, args.expect_figure)
    print(json.dumps({**stats, "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
