"""spacy-dlfa: dual-layer feature aggregation for zero-shot cross-lingual transfer."""
from . import architectures, tokenizer  # noqa: F401  (registers the builders and the tokenizer)

__version__ = "0.1.0"
