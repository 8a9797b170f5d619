"""The `edgegan` command: one click group assembling trainer, export and runtime commands lazily."""

__version__ = "0.1.0"
