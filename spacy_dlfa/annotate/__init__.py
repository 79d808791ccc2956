"""Annotate large collections with a trained pipeline: ``python -m spacy_dlfa annotate MODEL INPUT OUTPUT``."""
from ..runs.distributed import RaySettings
from .engines import AnnotateSettings
from .run import AnnotateMismatch, annotate

__all__ = ["AnnotateMismatch", "AnnotateSettings", "RaySettings", "annotate"]
