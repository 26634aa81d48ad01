"""Readers for local copies of speech emotion corpora in their distributors' layouts.

    from hf_mtkd.corpora import load_corpus
    ds = load_corpus("iemocap", "/data/IEMOCAP_full_release", labels=["angry", "happy", "neutral", "sad"],
    merge_excited=True)

Each reader's module docstring states the layout it expects, where its label codes come from, and
what was assumed where the layout is not public (FESC, DEMoS fold lists).
"""

from .base import AUDIO_EXTENSIONS, CORE_COLUMNS, CorpusLayoutError, CorpusReader, CorpusReport, Utterance
from .cafe import CaFEReader
from .crema_d import CremaDReader
from .demos import DemosReader
from .emodb import EmoDBReader
from .fesc import FESC_FOLD_ORDER, FescReader
from .iemocap import IemocapReader
from .meld import MeldReader
from .ravdess import RavdessReader
from .registry import CORPORA, get_reader, list_corpora, load_corpus, register_corpus

__all__ = [
    "AUDIO_EXTENSIONS",
    "CORE_COLUMNS",
    "CORPORA",
    "FESC_FOLD_ORDER",
    "CaFEReader",
    "CorpusLayoutError",
    "CorpusReader",
    "CorpusReport",
    "CremaDReader",
    "DemosReader",
    "EmoDBReader",
    "FescReader",
    "IemocapReader",
    "MeldReader",
    "RavdessReader",
    "Utterance",
    "get_reader",
    "list_corpora",
    "load_corpus",
    "register_corpus",
]
