"""Errors a user can act on. The CLI prints them as one line; the server answers 4xx."""


class VidsynthError(Exception):
    """Base of the errors that carry a message meant for the user."""


class InvalidParameter(VidsynthError, ValueError):
    """A parameter a user can fix; the message names it and the accepted range."""


class ModelNotFound(VidsynthError, FileNotFoundError):
    """The model argument names nothing vidsynth can load; the message says what was tried."""
