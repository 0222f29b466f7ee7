"""The accelsim version: part of every cache key, so a new release never reuses old results."""

__version__ = "0.1.0"
