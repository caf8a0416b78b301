"""Training: one loop (:mod:`.loop`) with the problem kinds (:mod:`.ergodic`,
:mod:`.finite_horizon`) and the games (:mod:`.games`) plugged in as strategies; the run's state
and checkpoints (:mod:`.state`)."""

from .games import GAMES
from .loop import FORMULATIONS, Trainer, train
from .state import TrainState

__all__ = ["FORMULATIONS", "GAMES", "Trainer", "TrainState", "train"]
