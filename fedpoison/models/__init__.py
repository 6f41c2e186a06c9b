"""Small reference models; each builder takes ``(input_shape, num_classes, **params)``.

Importing this package registers every builder in ``MODELS``: logreg, mlp, cnn (``simple``),
fltrust_cnn, lenet, cifar_cnn (``cnns``) and resnet8 (``resnet``).
"""

from fedpoison.models import cnns, resnet, simple  # noqa: F401  (registration)
from fedpoison.models.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
