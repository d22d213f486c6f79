"""HTML copies of executed notebooks: cheap to make, and they render offline.

Cost: a ``lepton-nb run`` process makes one copy, so first-use costs dominate. nbconvert's
``HTMLExporter`` compiles its Jinja templates (cached here as bytecode under
``$LEPTON_HOME/cache/jinja``) and re-parses its own output with BeautifulSoup, compiling
soupsieve CSS selectors, only to add ``alt`` to images and ``tabindex`` to cells; the same two
edits are made here on the string (about 0.1 CPU-s less per process, see benchmarks/README.md).

Offline: plotly.js inlined instead of loaded from its CDN.

Plotly figures saved in a notebook (LossCurve's static output, ``fig.show()``) reference
``https://cdn.plot.ly/...`` by default, so an HTML copy opened without network (a classroom,
a laptop on a train) shows empty boxes. The first CDN tag becomes one inline copy of the
plotly.js shipped with the plotly package (~4.8 MB, only in copies that have a figure); the
other tags go.
"""

from __future__ import annotations

import re
from typing import Any

from lepton_nb.jobs.store import lepton_home

_IMG_NO_ALT = re.compile(r"<img\b(?![^>]*\balt=)")
_FOCUSABLE = re.compile(
    r'<div class="((?:[^"]*\s)?(?:jp-Cell-inputWrapper|jp-OutputArea-output)(?:\s[^"]*)?)"'
)

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


def render(nb: Any) -> str:
    """The notebook as one HTML page (nbconvert's lab template), plotly.js inlined."""
    from nbconvert import HTMLExporter
    from nbconvert.exporters.html import Highlight2HTML, WidgetsDataTypeFilter
    from nbconvert.exporters.templateexporter import TemplateExporter

    class _Exporter(HTMLExporter):  # type: ignore[misc]
        def from_notebook_node(  # type: ignore[override]
            self, nb: Any, resources: Any = None, **kw: Any
        ) -> tuple[str, dict[str, Any]]:
            # HTMLExporter.from_notebook_node minus its BeautifulSoup pass (done below).
            info = nb.metadata.get("language_info", {})
            lexer = info.get("pygments_lexer", info.get("name"))
            highlight = Highlight2HTML(pygments_lexer=lexer, parent=self)
            self.register_filter("highlight_code", self.filters.get("highlight_code", highlight))
            resources = self._init_resources(resources)
            self.register_filter(
                "filter_data_type",
                WidgetsDataTypeFilter(
                    notebook_metadata=self._nb_metadata, parent=self, resources=resources
                ),
            )
            html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            return _accessible(html), resources

        def _validate_preprocessor(self, nbc: Any, preprocessor: Any) -> None:
            # nbconvert checks against the schema relaxed for extra keys, which is compiled
            # (fastjsonschema code generation, ~50 ms) once per process only for this; the
            # strict one is compiled already where papermill ran. What passes strict passes
            # relaxed, so the relaxed check (and its error) only runs for what strict refuses.
            import nbformat

            try:
                nbformat.validate(nbc)
            except nbformat.ValidationError:
                super()._validate_preprocessor(nbc, preprocessor)

    # one schema check after all preprocessors instead of one after each of the twelve
    exporter = _Exporter(optimistic_validation=True)
    _cache_templates(exporter)
    body, _ = exporter.from_notebook_node(nb)
    return embed_plotlyjs(str(body))


def _accessible(html: str) -> str:
    """What nbconvert's soup pass adds: ``alt`` on images, focusable inputs and outputs."""
    html = _IMG_NO_ALT.sub('<img alt="No description has been provided for this image"', html)
    return _FOCUSABLE.sub(lambda m: f'<div class="{m.group(1)}" tabindex="0"', html)


def _cache_templates(exporter: Any) -> None:
    from jinja2 import FileSystemBytecodeCache

    folder = lepton_home() / "cache" / "jinja"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: compile the templates every time
        return
    exporter.environment.bytecode_cache = FileSystemBytecodeCache(str(folder))


__all__ = ["embed_plotlyjs", "render"]
