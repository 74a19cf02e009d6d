"""Presentation of results: terminal tables (rich), figures (matplotlib, imported lazily) and
self-contained HTML. This layer only reads results; it measures nothing."""

from ._demo import demo_figures as demo_figures
from ._demo import demo_html as demo_html
from ._demo import save_demo as save_demo
from ._demo import summary_table as summary_table

__all__ = ["demo_figures", "demo_html", "save_demo", "summary_table"]
