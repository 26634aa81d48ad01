"""An offline tokenizer for demos and tests: a WordPiece vocabulary learnt from the training transcripts.

No pretrained tokenizer can be downloaded here, so a demo teacher's tiny BERT gets a vocabulary
trained with `tokenizers` (BERT's normaliser and pre-tokeniser: lower case, accents stripped) on the
training split's text only, wrapped as a transformers `BertTokenizer` (the fast, tokenizers-backed
class) and saved with the processor, so students and inference use exactly the same vocabulary.
"""

from __future__ import annotations

from typing import Iterable

from transformers import BertTokenizer

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 1000,
    min_frequency: int = 1,
    lowercase: bool = True,
    model_max_length: int = 128,
) -> BertTokenizer:
    """Learn a WordPiece vocabulary of at most `vocab_size` entries from `texts` and wrap it for transformers."""
    from tokenizers.implementations import BertWordPieceTokenizer

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("train_wordpiece_tokenizer needs at least one non-empty text.")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}.")
    wordpiece = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=lowercase)
    wordpiece.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    return BertTokenizer(
        vocab=wordpiece.get_vocab(), do_lower_case=lowercase, strip_accents=lowercase,
        model_max_length=model_max_length,
    )


__all__ = ["SPECIAL_TOKENS", "train_wordpiece_tokenizer"]
