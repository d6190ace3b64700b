"""One error hierarchy for geowarden.

::

    GeowardenError                 every error geowarden raises on purpose
    ├── ConfigError                a setting or argument is wrong (exit 2)
    ├── InputError                 one input item is malformed (an address, a row); skip it
    │   └── AddressError           not an IP address
    ├── SourceError                a data source is unusable: missing, unreadable, wrong format
    │   └── DownloadError          fetching a public source failed or did not verify
    └── SnapshotError              no usable intel snapshot, or a corrupt one
        └── NoSnapshotError        none built yet and the default cannot be built

``InputError`` is the "skip this item" kind: a batch reports it with its line number and goes
on. The others are the "this cannot work" kind: they fail loudly, once, with one line.
Each carries an exit ``code`` that the CLI uses, and no personal data in its message.
"""

from __future__ import annotations


class GeowardenError(Exception):
    """Base of every error geowarden raises on purpose."""

    code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(GeowardenError):
    """A setting, argument or file given by the operator is wrong."""

    code = 2


class InputError(GeowardenError):
    """One input item is malformed; the rest of a batch still answers."""

    code = 3


class AddressError(InputError, ValueError):
    """Not an IPv4 or IPv6 address."""


class SourceError(GeowardenError):
    """A data source cannot be used: missing, unreadable or in an unexpected format."""

    code = 4


class DownloadError(SourceError):
    """Fetching a public source failed, or what came back did not verify."""


class SnapshotError(GeowardenError):
    """The intel snapshot is missing, corrupt or from an incompatible format version."""

    code = 5


class NoSnapshotError(SnapshotError):
    """No snapshot exists yet and none could be built."""
