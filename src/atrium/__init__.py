"""Atrium: a self-hostable user and identity backend."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("atrium")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
