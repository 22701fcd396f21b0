"""The command line, ``python -m npae COMMAND`` (:mod:`npae.cli.main`; its arguments :mod:`npae.cli.args`).
The top floor: nothing in npae imports it."""

from .main import main, run

__all__ = ["main", "run"]
