"""Errors the command line reports as one line, never as a traceback."""


class UserError(Exception):
    """A wrong argument (bad path, not a model folder, unavailable device): message + exit 2."""
