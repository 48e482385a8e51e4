"""The one exception type a user of seqlift sees for bad input."""


class SeqliftError(ValueError):
    """Bad input (file, record, layer, option): the message names the culprit and what to do."""
