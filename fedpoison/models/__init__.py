"""Small reference models; each builder takes ``(input_shape, num_classes, **params)``."""

from fedpoison.models.registry import MODELS, build_model
from fedpoison.models import simple  # noqa: F401  (registers logreg, mlp, cnn)

__all__ = ["MODELS", "build_model"]
