"""spacy-dlfa: dual-layer feature aggregation for zero-shot cross-lingual transfer."""
from . import architectures  # noqa: F401  (registers the builders)

__version__ = "0.1.0"
