"""esper: a declarative experiment runner for morphogenetic neural-network training."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("esper")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
