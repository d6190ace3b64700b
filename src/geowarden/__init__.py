"""geowarden: decide whether an AI API request may come from where it really comes from."""

from geowarden.model import Action, Decision, Evidence, Facts, RTTSample

__all__ = ["Action", "Decision", "Evidence", "Facts", "RTTSample", "Warden"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Warden pulls in numpy and the intel tables; import it lazily so `import geowarden` stays cheap.
    if name == "Warden":
        from geowarden.warden import Warden  # noqa: PLC0415 - lazy on purpose

        return Warden
    raise AttributeError(name)
