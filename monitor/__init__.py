"""A streaming social-post monitor: collect, tag, moderate, count, archive."""

__version__ = "0.1.0"
