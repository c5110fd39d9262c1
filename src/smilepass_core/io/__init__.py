"""The outer layer's conversions of the core's objects: record files (:mod:`.records`),
plain text (:mod:`.text`), notebook HTML (:mod:`.html`), typed frames (:mod:`.frames`)
and charts (:mod:`.charts`).

Importing this package registers the HTML and frame conversions with
:mod:`smilepass_core.presentation`; pyarrow, pandas, polars and matplotlib are imported
only when a conversion needs them.
"""

# charts imports matplotlib only when drawing; it is loaded with the package like the
# others, so every module holds the same classes however it is first reached.
from smilepass_core.io import charts as charts
from smilepass_core.io import frames as frames  # registers arrow, pandas, polars
from smilepass_core.io import html as html  # registers html
