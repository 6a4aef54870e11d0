"""User-facing errors: one line that says what is wrong and how to fix it."""

__all__ = ["VelocityGANError", "DataError", "ConfigError"]


class VelocityGANError(Exception):
    """An error caused by user input; the CLI prints its message on one line, no traceback."""


class DataError(VelocityGANError):
    """A data file, split file or array is missing, malformed or inconsistent."""


class ConfigError(VelocityGANError):
    """A configuration value, flag or dataset name is invalid."""
