"""The customer license portal."""

__version__ = "0.1.0"
