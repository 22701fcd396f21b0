"""The proofs: :mod:`~npae.checks.gradcheck` (central differences, ``rel_error``, ``check_layer``,
``check_function``, ``check_model``) and :mod:`~npae.checks.suite` (what ``python -m npae gradcheck`` runs)."""

from .gradcheck import KINKED, SMOOTH, GradcheckReport, check_function, check_layer, check_model, rel_error
from .suite import run_all

__all__ = ["check_function", "check_layer", "check_model", "GradcheckReport", "KINKED", "rel_error", "run_all",
           "SMOOTH"]
