from hydra.errors import CompactHydraException


class SweepError(CompactHydraException, ValueError):
    """A sweep setting that cannot work as given; the message says what to change.

    Hydra prints such an error as its message alone, without a traceback.
    """
