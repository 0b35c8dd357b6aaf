"""Training: settings, optimizers and strategies, the one loop, the hook
that runs a sparse-training algorithm."""
from tf_tickets.training.config import LR_SCHEDULES
from tf_tickets.training.config import OPTIMIZERS
from tf_tickets.training.config import LearningRate
from tf_tickets.training.config import Schedule
from tf_tickets.training.config import TrainingConfig
from tf_tickets.training.config import make_optimizer
from tf_tickets.training.config import optimizer_slots
from tf_tickets.training.cluster import STRATEGIES
from tf_tickets.training.cluster import PeerError
from tf_tickets.training.cluster import Workers
from tf_tickets.training.cluster import make_strategy
from tf_tickets.training.config import resolve_schedule
from tf_tickets.training.config import run_steps
from tf_tickets.training.context import RunContext
from tf_tickets.training.config import use_xla
from tf_tickets.training.evaluate import Evaluator
from tf_tickets.training.hook import Hook
from tf_tickets.training.capture import BatchGradients
from tf_tickets.training.capture import RewindPoint
from tf_tickets.training.loop import Trainer
from tf_tickets.training.network import load_finished
from tf_tickets.training.network import train_network
from tf_tickets.training.progress import last_position
from tf_tickets.training.mask_hook import MaskHook
