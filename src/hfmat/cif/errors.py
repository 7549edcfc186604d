"""The one error type of the CIF codec."""


class CifError(ValueError):
    """A CIF text could not be read or written. The message names the field or line at fault."""
