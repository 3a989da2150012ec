"""The sync server: device API, payment webhook, admin console, double-entry wallet ledger."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cafeteria-pos")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
