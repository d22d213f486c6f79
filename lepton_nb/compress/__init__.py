"""Model compression with measured trade-offs: quantize, prune, distill, report, sensitivity.

>>> from lepton_nb import compress
>>> q = compress.quantize(model, method="dynamic-int8")
>>> compress.report({"fp32": model, "int8": q}, test_data)
"""

from lepton_nb.compress._candidates import Recipe
from lepton_nb.compress.distill import DistillConfig, distill, kd_loss
from lepton_nb.compress.io import load, register_model, save
from lepton_nb.compress.methods import METHODS, MethodSpec, Variant, VariantContext, make_variant
from lepton_nb.compress.prune import SCOPES, PruneConfig, prune
from lepton_nb.compress.quantize import (
    QuantizeConfig,
    quantization_methods,
    quantize,
    register_quantizer,
)
from lepton_nb.compress.report import ReportConfig, report, to_html
from lepton_nb.compress.search import OBJECTIVES, SEARCH_METHODS, SearchConfig, SearchResult, search
from lepton_nb.compress.sensitivity import PERTURBATIONS, sensitivity

__all__ = [
    "METHODS",
    "OBJECTIVES",
    "PERTURBATIONS",
    "SCOPES",
    "SEARCH_METHODS",
    "DistillConfig",
    "MethodSpec",
    "PruneConfig",
    "QuantizeConfig",
    "Recipe",
    "ReportConfig",
    "SearchConfig",
    "SearchResult",
    "Variant",
    "VariantContext",
    "distill",
    "kd_loss",
    "load",
    "make_variant",
    "prune",
    "quantization_methods",
    "quantize",
    "register_model",
    "register_quantizer",
    "report",
    "save",
    "search",
    "sensitivity",
    "to_html",
]
