"""Corpus converters, one module a format: WikiANN TSV, UD CoNLL-U and Hugging Face rows -> spaCy DocBin.

Every converter builds one ``Doc`` per sentence with ``Doc(vocab, words=...,
spaces=...)`` from the corpus' own (gold) tokenization, sets the sentence start
(first token True, the others False) and returns the docs together with a dict
of counts. ``convert_corpus`` writes them to a ``.spacy`` file and prints the
counts with ``wasabi.msg``.

Gold tokenization: ``spacy train`` and ``spacy evaluate`` read these DocBins as
the reference docs, and the pipeline annotates copies of the same tokens, so
there is no retokenization and no token-alignment loss in the scores.

Nothing is dropped silently. Malformed input raises ``CorpusFormatError`` (file,
1-based line, what was expected). What is skipped on purpose (CoNLL-U
multiword-token range lines and empty nodes) or changed on purpose (a stray
WikiANN ``I-X`` read as the start of an entity) is counted and reported, and
``convert_corpus`` checks that the DocBin holds as many docs and tokens as were
read.

Modules: ``common`` (``CorpusFormatError``, the sentence record, reading lines, limits,
spacing), ``hf_rows`` (Hugging Face rows), ``wikiann`` (NER), ``ud`` (UD CoNLL-U, POS),
``sentence_pairs`` (XNLI, PAWS-X), ``docbin`` (writing a DocBin, the ``corpus`` command), ``interleaved``
(reading several tasks' DocBins as one training corpus, for a pipeline trained on both token tasks).
A task's train/dev/test DocBins are prepared by ``spacy_dlfa.tasks.prepare_task``.
"""
