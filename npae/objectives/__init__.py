"""What training minimizes: :mod:`~npae.objectives.losses` (mse, bce, softmax_cross_entropy),
:mod:`~npae.objectives.penalties` (L1Activity, KLSparsity, Contractive, WeightDecay) and
:mod:`~npae.objectives.noise` (the denoisers' corruptions), each with its gradient as a formula."""

from .losses import bce, mse, softmax_cross_entropy
from .noise import NOISES, GaussianNoise, MaskingNoise, SaltAndPepper
from .penalties import PENALTIES, Contractive, KLSparsity, L1Activity, Penalty, WeightDecay

__all__ = ["bce", "Contractive", "GaussianNoise", "KLSparsity", "L1Activity", "MaskingNoise", "mse", "NOISES",
           "Penalty", "PENALTIES", "SaltAndPepper", "softmax_cross_entropy", "WeightDecay"]
