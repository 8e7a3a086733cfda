"""Autograd utilities: functional gradients, gradient checks, anomaly mode, the clamp."""
from ..core.engine import last_clamped_count
from ..core.grad_mode import get_grad_clip, grad_clip, set_grad_clip
from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .functional import grad, hessian, hvp, jacobian, jvp, vhp, vjp
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["grad", "vjp", "jvp", "hvp", "vhp", "jacobian", "hessian", "gradcheck",
           "gradgradcheck", "GradcheckError", "detect_anomaly", "set_detect_anomaly",
           "is_anomaly_enabled", "AnomalyError", "set_grad_clip", "get_grad_clip",
           "grad_clip", "last_clamped_count"]
