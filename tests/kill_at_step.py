"""`python tests/kill_at_step.py STEP --config recipe.yaml [flags]`: the train CLI, killed by SIGKILL at the end of
training step STEP (after the checkpoints of the earlier steps are written, before anything of STEP is saved).

test_resume.py uses it so that the kill falls at one known step every time, not wherever a timed poll happens to
see it.
"""

import os
import signal
import sys

from transformers import TrainerCallback


class KillAtStep(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    step = int(argv[0])
    from hf_mtkd.cli.train import main as train_main
    from hf_mtkd.training.trainer import SERTrainer

    init = SERTrainer.__init__

    def init_with_kill(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(KillAtStep(step))

    SERTrainer.__init__ = init_with_kill
    train_main(argv[1:])
    sys.exit(f"the run finished without reaching step {step}")


if __name__ == "__main__":
    main(sys.argv[1:])
