"""A tiny random BERT with a WordPiece tokenizer trained locally: for tests and the smoke workflow."""
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

SENTENCES: List[str] = [
    "Angela Merkel visited Paris on Monday .",
    "The United Nations met in New York .",
    "Die Bundesregierung tagte gestern in Berlin .",
    "El presidente habló en Madrid con la prensa .",
    "Le musée du Louvre est à Paris .",
    "Президент России выступил в Москве .",
    "Владимир Путин встретился с журналистами .",
    "北京是中国的首都。",
    "东京大学位于日本。",
    "ذهب محمد إلى القاهرة يوم الأحد .",
    "الأمم المتحدة في نيويورك .",
    "İstanbul Türkiye'nin en büyük şehridir .",
    "Amsterdam is de hoofdstad van Nederland .",
    "O Brasil fica na América do Sul .",
]
TINY_WIDTH = 32
TINY_LAYERS = 3


def build_tiny_bert(path: Path, width: int = TINY_WIDTH, layers: int = TINY_LAYERS) -> Path:
    """A random BertModel and a WordPiece tokenizer trained on SENTENCES, the same on every call."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    words = [word for sentence in SENTENCES
             for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(sentence))]
    tokenizer.model = models.WordPiece(wordpiece_vocab(words, special, size=400), unk_token="[UNK]")
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * width,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    return path


def wordpiece_vocab(words: Sequence[str], special: Sequence[str], size: int) -> Dict[str, int]:
    """A WordPiece vocabulary learnt from `words` by greedy pair merges, ties broken by the pair's text.
    Not the tokenizers library's WordPieceTrainer: it breaks ties among equally frequent pairs in a
    different order in each process, which gave a different tiny model (and different test
    predictions) in every test session."""
    counts = Counter(tuple(word[:1]) + tuple("##" + char for char in word[1:]) for word in words)
    alphabet = {char for word in words for char in word} | {piece for pieces in counts for piece in pieces}  # as WordPieceTrainer
    vocab = list(special) + sorted(alphabet - set(special))
    while len(vocab) < size:
        pairs: Counter = Counter()
        for pieces, n in counts.items():
            for pair in zip(pieces, pieces[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best: Tuple[str, str] = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merged = best[0] + best[1][2:]
        if merged not in vocab:
            vocab.append(merged)
        counts = Counter({_merge(pieces, best, merged): n for pieces, n in counts.items()})
    return {piece: i for i, piece in enumerate(vocab)}


def _merge(pieces: Tuple[str, ...], pair: Tuple[str, str], merged: str) -> Tuple[str, ...]:
    out: List[str] = []
    i = 0
    while i < len(pieces):
        if pieces[i : i + 2] == pair:
            out.append(merged)
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return tuple(out)
