"""Atom: AI agents that automate business work under governance."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("atom-os")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
