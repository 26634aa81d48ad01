"""MELD, the Multimodal EmotionLines Dataset (English, Friends TV series).

Layout (MELD.Raw.tar.gz from affective-meld.github.io / declare-lab/MELD, with train.tar.gz, dev.tar.gz
and test.tar.gz unpacked in place):

    <root>/train_sent_emo.csv   <root>/train_splits/dia{D}_utt{U}.mp4
    <root>/dev_sent_emo.csv     <root>/dev_splits_complete/dia{D}_utt{U}.mp4
    <root>/test_sent_emo.csv    <root>/output_repeated_splits_test/dia{D}_utt{U}.mp4

The root may be MELD.Raw or its parent. The media folders may also sit one level down (e.g.
``<root>/train/train_splits``), and the shorter names ``dev_splits``/``test_splits`` are accepted.
The media are video clips; datasets/torchcodec decode their audio track, so no extraction is needed,
and audio extracted beside them under the same names (any extension) is used instead of the video.

Label source: the CSVs' Emotion column (Poria et al., ACL 2019): neutral, joy -> happy, sadness -> sad,
anger -> angry, surprise, fear, disgust. Other columns read: Speaker (a character name; speaker id
``meld_<name>``), Utterance (text), Sentiment, Dialogue_ID, Utterance_ID.
Splits: the official train / validation (dev) / test, each its own split of the DatasetDict; the fold
column holds the split name. The release has 9,989 / 1,109 / 2,610 CSV rows. Known defects of the public
archive (declare-lab/MELD issues #22, #27, #39): the dev clip dia110_utt7 is missing (rows without their
clip are counted and skipped), train_splits/dia125_utt3.mp4 is corrupt (skipped by default, see
`skip_known_broken`), and the media folders hold extra clips no CSV row names (ignored).
Assumed: the CSVs are UTF-8 (cp1252 is tried if they are not).

Options:
    skip_known_broken: skip the clips the archive is known to have broken (`MELD_KNOWN_BROKEN`); default
        True. Set False if you replaced them with good copies.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .base import CorpusReader, CorpusReport, Utterance, descend_into, find_child, index_by_stem
from .registry import register_corpus

# split -> (CSV name, media folder names, most common first)
_SPLITS = {
    "train": ("train_sent_emo.csv", ("train_splits",)),
    "validation": ("dev_sent_emo.csv", ("dev_splits_complete", "dev_splits")),
    "test": ("test_sent_emo.csv", ("output_repeated_splits_test", "test_splits")),
}
_REQUIRED = ("Emotion", "Speaker", "Dialogue_ID", "Utterance_ID")

#: (split, clip stem) of clips the public archive is known to have corrupt (declare-lab/MELD issue #39).
MELD_KNOWN_BROKEN = frozenset({("train", "dia125_utt3")})


@register_corpus
class MeldReader(CorpusReader):

    name = "meld"
    language = "en"
    layout = (
        "<root>/{train,dev,test}_sent_emo.csv with media <root>/train_splits/, <root>/dev_splits_complete/, "
        "<root>/output_repeated_splits_test/ holding dia{D}_utt{U}.mp4 (root = MELD.Raw or its parent)"
    )
    label_names = {
        "neutral": "neutral", "joy": "happy", "sadness": "sad", "anger": "angry",
        "surprise": "surprise", "fear": "fear", "disgust": "disgust",
    }  # fmt: skip
    extra_columns = ("text", "sentiment", "dialogue_id", "utterance_id")
    splits = ("train", "validation", "test")

    def __init__(self, *, skip_known_broken: bool = True):
        self.skip_known_broken = skip_known_broken

    def normalise_code(self, code: str) -> str:
        return code.strip().lower()

    def scan(self, root: Path, report: CorpusReport):
        root = descend_into(root, ["MELD.Raw", "MELD"], _has_csv)
        for split, (csv_name, folder_names) in _SPLITS.items():
            table = root / csv_name
            if not table.is_file():
                report.add_skipped("split without its CSV", str(table))
                continue
            media_folder = _find_media_folder(root, folder_names)
            if media_folder is None:
                raise self.layout_error(root, f"{csv_name} is there but none of its media folders "
                                              f"{list(folder_names)}")
            media = index_by_stem(media_folder)
            for number, row in enumerate(_read_csv(table), start=1):
                report.files_seen += 1
                if not all(row.get(column) for column in _REQUIRED):
                    report.add_unparsable(f"{table.name} data row {number}: {dict(row)}")
                    continue
                dialogue, utterance = row["Dialogue_ID"].strip(), row["Utterance_ID"].strip()
                stem = f"dia{dialogue}_utt{utterance}"
                path = media.get(stem)
                if path is None:
                    report.add_skipped("CSV row without its media file", f"{media_folder.name}/{stem}")
                    continue
                if self.skip_known_broken and (split, stem) in MELD_KNOWN_BROKEN:
                    report.add_skipped("clip known to be corrupt in the public archive", str(path))
                    continue
                yield Utterance(
                    path=str(path),
                    code=row["Emotion"],
                    speaker=f"meld_{row['Speaker'].strip()}",
                    fold=split,
                    split=split,
                    extra={
                        "text": row.get("Utterance", ""),
                        "sentiment": row.get("Sentiment", "").strip().lower(),
                        "dialogue_id": dialogue,
                        "utterance_id": utterance,
                    },
                )


def _has_csv(root: Path) -> bool:
    return any((root / csv_name).is_file() for csv_name, _ in _SPLITS.values())


def _find_media_folder(root: Path, names: tuple[str, ...]) -> Path | None:
    found = find_child(root, *names)
    if found is not None:
        return found
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found = find_child(child, *names)
        if found is not None:
            return found
    return None


def _read_csv(table: Path) -> list[dict[str, str]]:
    data = table.read_bytes()
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    header = rows[0].keys() if rows else []
    missing = [column for column in _REQUIRED if column not in header]
    if missing:
        raise ValueError(f"meld: {table} lacks the columns {missing}; its header is {list(header)}.")
    return rows
