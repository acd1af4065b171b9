"""The package's version (also in ``pyproject.toml``), in a module of its own so that any layer
can read it without importing the package's top-level facade."""

__version__ = "0.2.0"
