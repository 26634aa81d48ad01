"""The shared helpers: atomic writes, sums pooled over processes, percent formatting, the audio extensions."""

import json

import numpy as np
import pytest

from hf_mtkd.data.audio import AUDIO_EXTENSIONS, has_audio_extension
from hf_mtkd.metrics import format_percent, format_with_ci
from hf_mtkd.utils.atomic import atomic_path, write_json_atomic, write_text_atomic
from hf_mtkd.utils.distributed import end_process_group, pool_totals


class Killed(BaseException):
    """Stands for the process dying mid-write."""


def test_atomic_path_keeps_the_old_file_when_the_writer_dies(tmp_path):
    path = tmp_path / "sub" / "figure.png"
    write_text_atomic(path, "old")
    with pytest.raises(Killed):
        with atomic_path(path) as tmp:
            assert tmp.endswith(".png") and (tmp_path / "sub").samefile(tmp.rsplit("/", 1)[0])
            open(tmp, "w").write("half")
            raise Killed
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["figure.png"]


def test_write_json_atomic_takes_numpy_and_refuses_nan_when_asked(tmp_path):
    path = write_json_atomic({"b": np.float32(0.5), "a": np.arange(2)}, tmp_path / "x.json")
    assert path.read_text() == '{\n  "a": [\n    0,\n    1\n  ],\n  "b": 0.5\n}\n'
    with pytest.raises(ValueError):
        write_json_atomic({"x": float("nan")}, tmp_path / "x.json", allow_nan=False)
    assert json.loads(path.read_text())["b"] == 0.5
    with pytest.raises(TypeError, match="object is not JSON|not JSON serializable"):
        write_json_atomic({"x": object()}, tmp_path / "y.json")
    assert not (tmp_path / "y.json").exists()


def test_pool_totals_in_one_process_sums_numbers_and_lists():
    pooled = pool_totals({"loss": (3.0, 2), "weights": ([1.0, 3.0], 4)})
    assert pooled == {"loss": (3.0, 2), "weights": ([1.0, 3.0], 4)}


def test_percent_formats():
    assert format_percent(0.1234) == "12.3" and format_percent(None) == "-"
    assert format_with_ci(0.5, [0.25, 0.75]) == "50.0 [25.0, 75.0]" and format_with_ci(0.5, None) == "50.0"


def test_one_list_of_audio_extensions():
    from hf_mtkd.corpora import AUDIO_EXTENSIONS as corpora_extensions
    from hf_mtkd.inference import AUDIO_EXTENSIONS as predict_extensions

    assert corpora_extensions is AUDIO_EXTENSIONS and predict_extensions is AUDIO_EXTENSIONS
    assert has_audio_extension("a.WAV") and has_audio_extension("b.flac") and not has_audio_extension("notes.txt")
    assert not has_audio_extension("wav")


def test_one_weight_hash_for_the_teacher_and_upstream_fingerprints():
    """The MTKD teacher-logit cache and the meta-curriculum feature cache key on the same weight hash."""
    import copy
    import hashlib

    import torch

    from hf_mtkd import modeling_utils
    from hf_mtkd.models.inverted_transformer import upstream
    from hf_mtkd.distillation import teachers

    assert (
        teachers.hash_weights is modeling_utils.hash_weights and upstream.hash_weights is modeling_utils.hash_weights
    )

    def digest(module):
        state = hashlib.sha256()
        modeling_utils.hash_weights(module, state)
        return state.hexdigest()

    torch.manual_seed(0)
    linear = torch.nn.Linear(3, 2)
    same = copy.deepcopy(linear)
    assert digest(linear) == digest(same)
    with torch.no_grad():
        same.weight[0, 0] += 1e-6
    assert digest(linear) != digest(same)  # any weight
    assert digest(linear) != digest(copy.deepcopy(linear).double())  # the dtype
    renamed = torch.nn.Sequential(copy.deepcopy(linear))
    assert digest(linear) != digest(renamed)  # the parameter names
    # 0-dim buffers (BatchNorm's num_batches_tracked, as in the log-mel CNN teachers) are hashed too.
    norm = torch.nn.BatchNorm1d(3)
    trained = copy.deepcopy(norm)
    trained.num_batches_tracked += 1
    assert digest(norm) != digest(trained)


def test_end_process_group_destroys_the_group_and_is_a_no_op_without_one(tmp_path):
    # Scripts launched on several processes end with it (barrier, then destroy): a gloo group left to interpreter
    # exit aborted a process now and then ("terminate called without an active exception", exit -6).
    import torch.distributed as dist

    end_process_group()  # nothing initialised: nothing to do
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        end_process_group()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
