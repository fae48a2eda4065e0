"""The installed package's version, reported by /health and the OpenAPI document."""

from importlib import metadata

try:
    VERSION = metadata.version("ml-workbench")
except metadata.PackageNotFoundError:  # running from a checkout
    VERSION = "0.0.0"
