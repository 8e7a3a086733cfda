"""Optimizers: the :class:`Optimizer` base, one file per update rule.

Each optimizer follows PyTorch's contract (``param_groups``, lazy ``state[p]``
with PyTorch's key names, index-based ``state_dict``, ``step(closure)``,
``zero_grad(set_to_none=True)``) and adds ``optimizer.lr`` (read/write over all
groups), ``step_count`` and the documented argument aliases (``learning_rate``,
``beta1``/``beta2``, ``beta_1``/``beta_2``, ``epsilon``).

How to add an optimizer
-----------------------
1. Create ``optim/<name>.py`` with four parts (``sgd.py`` and ``adam.py`` are
   the models):

   * a module docstring: the algorithm box in LaTeX with the paper's symbols, the
     reference (authors, year, arXiv id), the defaults, where ``ε`` sits and what
     weight decay means;
   * ``<name>_update(param, grad, <state arrays>, *, <hyper-parameters>,
     scratch=None)``: the kernel, in place on raw arrays, one statement per row of
     the box with the equation as a comment; ``xp = get_array_module(param)``, no
     ``np.`` on data, at most one scratch array (``scratch_like``). Reuse
     ``_kernels.py`` (effective gradient, moving averages, bias correction,
     decoupled decay, descent step) rather than rewriting them;
   * optionally a fused CuPy kernel: a :class:`~neural_arch.optim.fused.FusedKernel`
     whose CUDA-C repeats the NumPy kernel row for row (the ``__device__`` twins of
     ``_kernels.py`` are in ``fused.PREAMBLE``), launched from ``_update`` when
     ``fused.use_fused`` says so, and held to the NumPy kernel by
     ``tests/optim/test_fused.py`` (a g++ twin on the CPU, nvcc, and the GPU);
   * the class: ``hyperparameters = {name: validator}`` (validators in
     ``_args.py``: ``non_negative``, ``fraction``, ``betas``, ``flag``, ...),
     ``__init__`` decorated with ``@accepts_aliases`` that builds ``defaults``
     with PyTorch's names and default values and calls ``super().__init__(params,
     defaults, contiguous=contiguous)``, cross-checks in ``check_group`` if any,
     and ``_update(self, param, grad, state, group)``, which creates the state
     lazily (``if not state: ... xp.zeros_like(param)``, PyTorch's key names),
     bumps ``state['step']`` and calls the kernel with
     ``scratch=self._scratch(param)``. The base class loops over groups, skips
     parameters without a gradient and runs hooks; override ``step`` only for
     closure-driven methods (LBFGS, ...). Set ``elementwise = False`` if the
     update uses per-tensor reductions (LARS, LAMB trust ratios), and override
     ``_state_shape`` if a state array is not of the parameter's shape.
   * Adam-like optimizers expose ``m = state_view('exp_avg')`` (and ``v``).
2. Export it here and (for the names PyTorch has at ``torch.optim``) at the top
   level of ``neural_arch``.
3. Add one row to the table in ``tests/optim/cases.py``: it drives torch parity,
   state_dict resume, contiguous-mode equality and convergence for every row.
"""
from . import contiguous
from .adam import Adam, adam_update
from .adamax import Adamax, adamax_update
from .adamw import AdamW, adamw_update
from .contiguous import flatten_parameters
from .lamb import LAMB, lamb_update
from .lion import Lion, lion_update
from .nadam import NAdam, nadam_update
from .optimizer import LearningRate, Optimizer, StateView, required, state_view
from .radam import RAdam, radam_update
from .sgd import SGD, sgd_update

__all__ = ["Optimizer", "required", "LearningRate", "StateView", "state_view", "SGD",
           "sgd_update", "Adam", "adam_update", "AdamW", "adamw_update",
           "flatten_parameters", "contiguous"]
__all__ += ["Adamax", "adamax_update", "NAdam", "nadam_update", "RAdam", "radam_update",
            "Lion", "lion_update", "LAMB", "lamb_update"]
from .adadelta import Adadelta, adadelta_update
from .adagrad import Adagrad, adagrad_update
from .asgd import ASGD, asgd_update
from .lars import LARS, lars_update
from .rmsprop import RMSprop, rmsprop_update
from .rprop import Rprop, rprop_update
__all__ += ["Adagrad", "adagrad_update", "Adadelta", "adadelta_update", "RMSprop",
            "rmsprop_update", "Rprop", "rprop_update", "ASGD", "asgd_update", "LARS",
            "lars_update"]
from . import lr_scheduler
from .lr_scheduler import (ChainedScheduler, ConstantLR, CosineAnnealingLR,
                           CosineAnnealingWarmRestarts, CyclicLR, ExponentialLR, LambdaLR,
                           LinearLR, LRScheduler, MultiplicativeLR, MultiStepLR, OneCycleLR,
                           PolynomialLR, ReduceLROnPlateau, SequentialLR, StepLR,
                           WarmupCosineLR)
__all__ += ["lr_scheduler", *lr_scheduler.__all__]
from . import deep_supervision, schedules
from .deep_supervision import deep_supervision_schedule_builder
from .schedules import (CosineDecay, CosineDecayRestarts, ExponentialDecay,
                        LearningRateSchedule, PiecewiseConstant, PiecewiseConstantDecay,
                        PolynomialDecay, Warmup, learning_rate_schedule_builder)
__all__ += ["schedules", "deep_supervision", "LearningRateSchedule", "CosineDecay",
            "ExponentialDecay", "CosineDecayRestarts", "PiecewiseConstant",
            "PiecewiseConstantDecay", "PolynomialDecay", "Warmup",
            "learning_rate_schedule_builder", "deep_supervision_schedule_builder"]
from .lbfgs import LBFGS
from .shampoo import Shampoo, shampoo_update
__all__ += ["LBFGS", "Shampoo", "shampoo_update"]
from .gradnorm import GradNorm
from .lookahead import Lookahead
from .pcgrad import PCGrad
from .sam import ASAM, SAM
__all__ += ["SAM", "ASAM", "Lookahead", "PCGrad", "GradNorm"]
from . import clipping, monitor
from .clipping import (GradientClipper, adaptive_clip_grad_, apply_gradient_clipping,
                       clip_grad_norm_, clip_grad_norm_per_tensor_, clip_grad_value_)
from .monitor import GradientMonitor, OptimizerMonitor
__all__ += ["clipping", "monitor", "clip_grad_norm_", "clip_grad_value_",
            "clip_grad_norm_per_tensor_", "adaptive_clip_grad_", "GradientClipper",
            "apply_gradient_clipping", "OptimizerMonitor", "GradientMonitor"]
from . import gradient_free
from .cmaes import CMAES
from .differential_evolution import DifferentialEvolution
from .gradient_free import GradientFreeOptimizer
from .particle_swarm import ParticleSwarmOptimization
__all__ += ["gradient_free", "GradientFreeOptimizer", "CMAES", "DifferentialEvolution",
            "ParticleSwarmOptimization"]
from . import factory
from .factory import (ConfigError, DeferredOptimizer, OptimizerFactory, available_optimizers,
                      available_schedulers, build_optimizer, build_scheduler, create_optimizer,
                      create_optimizer_and_scheduler, create_optimizer_with_groups,
                      create_scheduler, get_config, get_optimizer_class, get_scheduler_class,
                      load_config, optimizer_builder, register_optimizer, register_scheduler,
                      save_config)
__all__ += ["factory", *factory.__all__]
from .mixed_precision import MixedPrecisionOptimizer
__all__ += ["MixedPrecisionOptimizer"]
from .distributed import DistributedOptimizer
__all__ += ["DistributedOptimizer"]
