"""A very small SVG writer: the views' static pictures, readable in print and without colour.

Every mark carries a text label or a pattern as well as a colour, and the palette is
Okabe and Ito's, which stays distinct for colour-blind readers.
"""
from __future__ import annotations

from html import escape

# Okabe–Ito palette
BLACK, ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILION, PURPLE = (
    "#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
GREY, LIGHT = "#999999", "#F2F2F2"
FONT = "font-family:DejaVu Sans Mono,Menlo,Consolas,monospace"

DEFS = f"""<defs>
<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="{YELLOW}"/><line x1="0" y1="0" x2="0" y2="6" stroke="{BLACK}" stroke-width="2"/></pattern>
<pattern id="dots" width="5" height="5" patternUnits="userSpaceOnUse">
<rect width="5" height="5" fill="{LIGHT}"/><circle cx="2.5" cy="2.5" r="1" fill="{GREY}"/></pattern>
</defs>"""


class Svg:
    """Collects marks, then renders them as one <svg> element of a fixed width."""

    def __init__(self, width: int, title: str):
        self.width = width
        self.title = title
        self.height = 0
        self.parts: list[str] = []

    def rect(self, x, y, w, h, fill, stroke=BLACK, label: str | None = None, dash: bool = False) -> None:
        extra = ' stroke-dasharray="4 2"' if dash else ""
        tip = f"<title>{escape(label)}</title>" if label else ""
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
                          f'fill="{fill}" stroke="{stroke}" stroke-width="1"{extra}>{tip}</rect>')
        self.height = max(self.height, y + h)

    def text(self, x, y, s: str, size: int = 11, anchor: str = "start", bold: bool = False, fill: str = BLACK) -> None:
        weight = ' font-weight="bold"' if bold else ""
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'fill="{fill}"{weight}>{escape(s)}</text>')
        self.height = max(self.height, y + 4)

    def line(self, x1, y1, x2, y2, stroke=BLACK, width: float = 1) -> None:
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                          f'stroke="{stroke}" stroke-width="{width}"/>')

    def circle(self, cx, cy, r, fill, label: str | None = None) -> None:
        tip = f"<title>{escape(label)}</title>" if label else ""
        self.parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r}" fill="{fill}" stroke="{BLACK}">{tip}</circle>')

    def triangle(self, cx, cy, r, fill, label: str | None = None) -> None:
        tip = f"<title>{escape(label)}</title>" if label else ""
        pts = f"{cx:.1f},{cy - r:.1f} {cx - r:.1f},{cy + r:.1f} {cx + r:.1f},{cy + r:.1f}"
        self.parts.append(f'<polygon points="{pts}" fill="{fill}" stroke="{BLACK}">{tip}</polygon>')

    def render(self) -> str:
        h = int(self.height) + 8
        # Scales down to fit a narrow column (the book's is ~650 px), never up past its width.
        style = f"{FONT};width:100%;max-width:{self.width}px;height:auto"
        return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="lguest-view" '
                f'width="{self.width}" height="{h}" viewBox="0 0 {self.width} {h}" style="{style}">'
                f'<title>{escape(self.title)}</title>{DEFS}{"".join(self.parts)}</svg>')
