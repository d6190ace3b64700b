"""One error hierarchy for geowarden.

::

    GeowardenError                 every error geowarden raises on purpose         exit 1  HTTP 500
    ├── ConfigError                a setting, argument or operator's file is wrong  exit 2  HTTP 500
    ├── InputError                 one input item is malformed; skip it             exit 3  HTTP 422
    │   ├── AddressError           not an IP address                                exit 3  HTTP 422
    │   └── MeshHeaderError        (latency/calibration.py) a mesh file's first line is unreadable
    ├── SourceError                a data source is unusable: missing, unreadable   exit 4  HTTP 503
    │   ├── DownloadError          fetching a public source failed or did not verify
    │   │   └── _NotFoundError     (intel/update.py) the server answered 404: try last month
    │   └── PhoneLookupError       (signals/phone.py) a live phone look-up failed
    ├── SnapshotError              no usable intel snapshot, or a corrupt one       exit 5  HTTP 503
    │   └── NoSnapshotError        none built yet and the default cannot be built
    ├── StateUnavailable           (state/base.py) the state store cannot answer    exit 1  HTTP 503
    ├── AuthError                  no token, or one without the scope               exit 1  HTTP 401
    ├── ReviewConflictError        (audit/review.py) a verdict the review's state  exit 1  HTTP 409
    │                              does not allow (already decided, not reopened)
    ├── RateLimitError             too many attempts; retry after ``retry_after``   exit 1  HTTP 429
    │   └── OtpRateLimitError      (signals/otp.py) too many codes; also an OtpError
    └── OtpError                   (signals/otp.py) a one-time code was not issued  exit 1  HTTP 503
        └── OtpDeliveryError       (signals/otp.py) the sender could not deliver it

``InputError`` is the "skip this item" kind: a batch reports it with its line number and goes
on. The others are the "this cannot work" kind: they fail loudly, once, with one line.

Each class carries the exit ``code`` the command line ends with (the README documents them) and
the HTTP ``status`` the service answers with (``service/app.py`` maps errors through ``status``
alone, in one handler). A ``ConfigError`` while serving a request is the operator's mistake (a
policy that does not load, an unreadable token store, a closed audit log): the client cannot fix
it by changing the request, so it is a 500, not a 400. What a client sends is validated at the
edge before any of this code runs (422), and a handler that checks a client's value itself
raises ``InputError`` (422). A single error may override its class's status (``status=...``).

Errors also carry structured ``context`` (keyword arguments: ``file``, ``line``, ``source``,
``snapshot``, ...) for logs and callers, as MaxMind's errors carry ``network``. Neither the
message nor the context ever holds personal data: no end user's address, phone number, email,
name or token.
"""

from __future__ import annotations

#: What a context value may be: text or a number (``None`` values are dropped).
ContextValue = str | int | float | None


class GeowardenError(Exception):
    """Base of every error geowarden raises on purpose."""

    code = 1  # the command line's exit code
    status = 500  # the service's HTTP status

    def __init__(self, message: str, *, status: int | None = None, **context: ContextValue) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.context: dict[str, str | int | float] = {k: v for k, v in context.items() if v is not None}


class ConfigError(GeowardenError):
    """A setting, argument or file given by the operator is wrong."""

    code = 2


class InputError(GeowardenError):
    """One input item is malformed; the rest of a batch still answers."""

    code = 3
    status = 422


class AddressError(InputError, ValueError):
    """Not an IPv4 or IPv6 address."""


class SourceError(GeowardenError):
    """A data source cannot be used: missing, unreadable or in an unexpected format."""

    code = 4
    status = 503


class DownloadError(SourceError):
    """Fetching a public source failed, or what came back did not verify."""


class SnapshotError(GeowardenError):
    """The intel snapshot is missing, corrupt or from an incompatible format version."""

    code = 5
    status = 503


class NoSnapshotError(SnapshotError):
    """No snapshot exists yet and none could be built."""


class AuthError(GeowardenError):
    """The request carries no token, or one without the scope the endpoint needs."""

    status = 401


class RateLimitError(GeowardenError):
    """Too many attempts; the caller may try again after ``retry_after`` seconds (if known)."""

    status = 429

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None, **context: ContextValue
    ) -> None:
        super().__init__(message, status=status, **context)
        self.retry_after = retry_after
