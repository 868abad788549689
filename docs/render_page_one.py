"""Render page 1 of a monthly report's PDF as the PNG the README shows.

    python docs/render_page_one.py                        # reports/2026-10/report.pdf -> docs/images/page_one.png
    python docs/render_page_one.py REPORT.pdf OUT.png [--scale 1.3]

Run it after README command 1 (the demo clinic's 2026-10 run), so the picture is the demo's real page 1,
never drawn by hand. pypdfium2 renders the page as any PDF viewer would.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render_page_one(pdf: str | Path, png: str | Path, scale: float = 1.3) -> Path:
    """Render the first page of `pdf` to `png` (written atomically) and return its path."""
    import pypdfium2 as pdfium

    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    image = pdfium.PdfDocument(str(pdf))[0].render(scale=scale).to_pil().convert("RGB")
    partial = png.with_name(f".{png.name}.partial")
    image.save(partial, format="PNG", optimize=True)
    partial.replace(png)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf", nargs="?", default=ROOT / "reports" / "2026-10" / "report.pdf")
    parser.add_argument("png", nargs="?", default=ROOT / "docs" / "images" / "page_one.png")
    parser.add_argument("--scale", type=float, default=1.3)
    args = parser.parse_args(argv)
    print(render_page_one(args.pdf, args.png, args.scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
