"""HTML copies that render offline: plotly.js inlined instead of loaded from its CDN.

Plotly figures saved in a notebook (LossCurve's static output, ``fig.show()``) reference
``https://cdn.plot.ly/...`` by default, so an HTML copy opened without network (a classroom,
a laptop on a train) shows empty boxes. The first CDN tag becomes one inline copy of the
plotly.js shipped with the plotly package (~4.8 MB, only in copies that have a figure); the
other tags go.
"""

from __future__ import annotations

import re

_CDN_TAG = re.compile(r"<script\b[^>]*\bsrc=\"https://cdn\.plot\.ly/[^\"]*\"[^>]*>\s*</script>")


def embed_plotlyjs(body: str) -> str:
    """``body`` with plotly.js inlined once in place of its CDN ``<script>`` tags."""
    if _CDN_TAG.search(body) is None:
        return body
    from plotly.offline import get_plotlyjs

    # "</script" cannot occur in the bundle unescaped, or the browser would end the tag there.
    inline = '<script type="text/javascript">' + get_plotlyjs().replace("</script", "<\\/script")
    inline += "</script>"
    first = True

    def replace(_: re.Match[str]) -> str:
        nonlocal first
        if first:
            first = False
            return inline
        return ""

    return _CDN_TAG.sub(replace, body)
