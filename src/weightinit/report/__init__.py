"""Presentation of results: terminal tables (rich), figures (matplotlib, imported lazily) and
self-contained HTML. This layer only reads results; it measures nothing.

`weightinit demo`'s report: `summary_table` (_summary.py), `demo_figures` (_figures.py),
`demo_html` (_page.py, its text in templates/) and `save_demo` (_save.py), all reading the
results dict through _values.py, which also holds the one rule every verdict on a signal
profile follows (`verdict`, `FLAT`) and the formats the findings share, so that
weightinit.studies states its findings by the rule the page shows."""

from ._figures import demo_figures as demo_figures
from ._page import demo_html as demo_html
from ._save import save_demo as save_demo
from ._summary import summary_table as summary_table
from ._values import FLAT as FLAT
from ._values import seed_list as seed_list
from ._values import span_of as span_of
from ._values import steps_of as steps_of
from ._values import times as times
from ._values import total as total
from ._values import value_range as value_range
from ._values import verdict as verdict

__all__ = ["FLAT", "demo_figures", "demo_html", "save_demo", "seed_list", "span_of", "steps_of",
           "summary_table", "times", "total", "value_range", "verdict"]
