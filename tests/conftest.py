import numpy as np
import pytest

import neural_arch as na


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Each test starts with the default clamp, grad mode and dtype."""
    yield
    na.set_grad_clip(1e6)
    na.autograd.set_detect_anomaly(False)
    na.set_grad_enabled(True)
    na.set_default_dtype("float32")
    na.set_default_device("cpu")
