"""What the model card says about audio_text models: the method, the paper, and how to call the model.

The trainer carries the method's text (`_name`, `_description`, `_paper`); the usage section replaces the
audio-classification Quick start, which does not fit a model that needs the transcript.
"""

from __future__ import annotations

from ..registry import Paper

DISPLAY_NAME = "audio + text distillation (3M-SER students)"
DESCRIPTION = (
    "A multimodal emotion classifier: a BERT-family text encoder reads the transcript, an audio encoder hears the "
    "clip, and the two are fused by self-attention over the concatenated token and frame sequences (3M-SER). "
    "Students keep only some of the teacher's text-encoder layers and learn with alpha * T^2 * KL(P_T || P_S) + "
    "(1 - alpha) * CE + gamma * MSE between teacher and student text hidden states, in two phases (encoders frozen, "
    "then the text encoder fine-tuned); without a teacher the loss is cross-entropy alone."
)
# From the authors' repository (nmihtrug/DistilSER README).
CITATION = """@inproceedings{nguyen2024enhancing,
  title     = {Enhancing Speech Emotion Recognition Through Knowledge Distillation},
  author    = {Nguyen, Trung Minh and Tran, Phuong-Nam and Dang, Duc Ngoc Minh},
  booktitle = {2024 15th International Conference on Information and Communication Technology Convergence (ICTC)},
  pages     = {197--202},
  year      = {2024},
  doi       = {10.1109/ICTC62082.2024.10826904}
}"""
PAPER = Paper(
    title="Enhancing Speech Emotion Recognition through Knowledge Distillation",
    authors="Trung Minh Nguyen, Phuong-Nam Tran and Duc Ngoc Minh Dang",
    url="https://doi.org/10.1109/ICTC62082.2024.10826904",
    citation=CITATION,
)
USAGE_TITLE = "How to use this model (clip + transcript)"


def usage_markdown(model_id: str, label_names: list[str]) -> str:
    """The card's Quick start for an audio_text model: pipeline and predict calls with transcripts."""
    first = label_names[0] if label_names else "..."
    return f"""```python
import hf_mtkd  # registers the audio-text-classification task and this architecture with transformers
from transformers import pipeline

classifier = pipeline("audio-text-classification", model="{model_id}")
classifier({{"audio": "speech.wav", "text": "what the speaker says"}})
# [{{'label': '{first}', 'score': ...}}, ...]
```

The transcript is required. For many files, give the transcripts as a CSV (`file_name`, `text`, paths relative
to the CSV) or as `speech.txt` files beside the audio:

```bash
hf-mtkd predict --model {model_id} recordings/ --transcripts recordings/transcripts.csv --output predictions.csv
```"""


__all__ = ["CITATION", "DESCRIPTION", "DISPLAY_NAME", "PAPER", "USAGE_TITLE", "usage_markdown"]
