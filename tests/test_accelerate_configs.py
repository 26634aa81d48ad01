"""The accelerate configs under recipes/accelerate_configs/ go through accelerate's own launch parsing.

Each file is read as `accelerate launch --config_file <file>` reads it, turned into the environment the
launcher hands to the processes, and that environment into accelerate's FSDP / DeepSpeed plugin, so a
key or value accelerate does not know fails here rather than on a GPU machine. DeepSpeed itself is an
optional extra and is not needed for this.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env
from transformers import AutoConfig, AutoModelForAudioClassification

from testing_utils import TINY_W2V2
from hf_mtkd.distillation.teachers import check_teacher_launch
from hf_mtkd.models.early_exit import EarlyExitAudioConfig, EarlyExitForAudioClassification

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "accelerate_configs"
EXPECTED = {
    "single.yaml": DistributedType.NO,
    "ddp.yaml": DistributedType.MULTI_GPU,
    "fsdp.yaml": DistributedType.FSDP,
    "zero2.yaml": DistributedType.DEEPSPEED,
}


def launch_env(path: Path) -> tuple[object, dict[str, str]]:
    """(parsed launch arguments, environment of the launched processes) for `accelerate launch --config_file path`."""
    args = launch_command_parser().parse_args(["--config_file", str(path), "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = list(defaults.deepspeed_config)  # set by launch_command
        _, env = prepare_deepspeed_cmd_env(args)
    elif args.multi_gpu or args.use_fsdp:
        env = prepare_multi_gpu_env(args)
    else:
        env = {}
    return args, {k: v for k, v in env.items() if k.startswith(("ACCELERATE_", "FSDP_"))}


def test_every_config_is_known_and_parses():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)
    for name, kind in EXPECTED.items():
        config = ClusterConfig.from_yaml_file(CONFIGS / name)  # unknown top-level keys raise here
        assert config.distributed_type == kind, name
        assert config.mixed_precision in ("no", "bf16"), name


@pytest.mark.parametrize("name", ["ddp.yaml", "fsdp.yaml", "zero2.yaml"])
def test_multi_process_configs_launch_bf16(name):
    args, env = launch_env(CONFIGS / name)
    assert args.num_processes == 8 and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    check_teacher_launch(env)  # these setups load teachers whole on every process


def test_fsdp_config_builds_the_plugin_and_wraps_the_student_layers():
    raw = yaml.safe_load((CONFIGS / "fsdp.yaml").read_text())
    launch_flags = {action.dest for action in launch_command_parser()._actions}
    assert set(raw["fsdp_config"]) <= launch_flags  # every key is an `accelerate launch --fsdp_*` option
    _, env = launch_env(CONFIGS / "fsdp.yaml")
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "false"
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and not plugin.cpu_ram_efficient_loading
    assert "FULL_STATE_DICT" in str(plugin.state_dict_type)
    # The class to wrap exists in a wav2vec2 student and in the early-exit model built on it.
    (layer_class,) = plugin.transformer_cls_names_to_wrap
    backbone = AutoConfig.for_model("wav2vec2", **TINY_W2V2)
    students = [
        AutoModelForAudioClassification.from_config(backbone),
        EarlyExitForAudioClassification(EarlyExitAudioConfig(backbone_config=backbone.to_dict(), exit_layers=[1])),
    ]
    for model in students:
        assert any(type(module).__name__ == layer_class for module in model.modules())


def test_zero2_config_builds_the_deepspeed_plugin():
    raw = yaml.safe_load((CONFIGS / "zero2.yaml").read_text())
    launch_flags = {action.dest for action in launch_command_parser()._actions}
    assert set(raw["deepspeed_config"]) <= launch_flags
    _, env = launch_env(CONFIGS / "zero2.yaml")
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true" and env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "2"
    with mock.patch.dict(os.environ, env):
        plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == 2 and plugin.deepspeed_config["zero_optimization"]["stage"] == 2


def test_setups_that_would_leave_teachers_without_weights_are_refused(tmp_path):
    zero3 = yaml.safe_load((CONFIGS / "zero2.yaml").read_text())
    zero3["deepspeed_config"]["zero_stage"] = 3
    (tmp_path / "zero3.yaml").write_text(yaml.safe_dump(zero3))
    with pytest.raises(ValueError, match="ZeRO-3"):
        check_teacher_launch(launch_env(tmp_path / "zero3.yaml")[1])
    fsdp = yaml.safe_load((CONFIGS / "fsdp.yaml").read_text())
    fsdp["fsdp_config"]["fsdp_cpu_ram_efficient_loading"] = True
    (tmp_path / "fsdp_ram.yaml").write_text(yaml.safe_dump(fsdp))
    with pytest.raises(ValueError, match="fsdp_cpu_ram_efficient_loading: false"):
        check_teacher_launch(launch_env(tmp_path / "fsdp_ram.yaml")[1])
