"""What the diagnosis report and the demo report both need: matplotlib figures without pyplot
or global state, PNG bytes and data URIs, escaping, and one Content-Security-Policy for pages
that load nothing and run no script."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

from ._errors import InitError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""Only inline CSS and data: images: a page with this policy fetches nothing and runs no
script, even if escaping were ever to fail."""


def new_figure(needs: str, fallback: str, **kwargs: Any) -> Figure:
    """A Figure on its own Agg canvas (no pyplot, no rcParams changes); `needs` and
    `fallback` finish the message when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise InitError(
            f"{needs} need matplotlib, which is not installed: pip install matplotlib (or "
            f"pip install 'weightinit[plot]'). {fallback}"
        ) from error
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure, dpi: float) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def number(value: float | None, digits: int = 4) -> str:
    """`digits` significant digits; "-" for a missing value, "nan" / "inf" / "-inf" for
    broken ones."""
    if value is None:
        return "-"
    if value != value:  # NaN
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, css: str, body: str) -> str:
    """One self-contained HTML page: `title` escaped here, `css` and `body` already safe,
    under the CSP above."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
{css}
</style>
</head>
<body>
{body}
</body>
</html>
"""
