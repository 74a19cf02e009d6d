"""Presentation of results: terminal tables (rich), figures (matplotlib, imported lazily) and
self-contained HTML. This layer only reads results; it measures nothing.

`weightinit demo`'s report: `summary_table` (_summary.py), `demo_figures` (_figures.py),
`demo_html` (_page.py, its text in templates/) and `save_demo` (_save.py), all reading the
results dict through _values.py."""

from ._figures import demo_figures as demo_figures
from ._page import demo_html as demo_html
from ._save import save_demo as save_demo
from ._summary import summary_table as summary_table

__all__ = ["demo_figures", "demo_html", "save_demo", "summary_table"]
