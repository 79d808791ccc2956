"""Annotate large collections with a trained pipeline: ``python -m spacy_dlfa annotate MODEL INPUT OUTPUT``."""
from .engines import AnnotateSettings, RaySettings
from .run import AnnotateMismatch, annotate

__all__ = ["AnnotateMismatch", "AnnotateSettings", "RaySettings", "annotate"]
