"""npae's version, written once: the package, setup.cfg and the model files all read it here."""

__version__ = "0.3.0"
