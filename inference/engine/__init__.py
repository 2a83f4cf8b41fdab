"""Training: optimizer and LR schedule, gradient clipping, checkpoints with resume, the loop; the execution
policy that Predictor and Trainer apply."""
from .checkpointer import TrainingCheckpointer, load_pretrained_backbone, load_weights_file
from .defaults import add_training_config, get_training_cfg, inference_config, load_training_config
from .execution import ExecutionPolicy, apply_execution_policy
from .optim import (
           GradientClipper,
           LRScheduler,
           WarmupSchedule,
           build_lr_scheduler,
           build_optimizer,
           param_groups,
)
from .trainer import Trainer

__all__ = ["ExecutionPolicy", "GradientClipper", "LRScheduler", "Trainer", "TrainingCheckpointer", "WarmupSchedule",
           "add_training_config", "apply_execution_policy", "build_lr_scheduler", "build_optimizer",
           "get_training_cfg", "inference_config", "load_pretrained_backbone", "load_training_config",
           "load_weights_file", "param_groups"]
