"""The one exception type users see for bad input; the CLI turns it into one line and exit code 2."""


class UnderspecError(ValueError):
    """Bad input or an unusable file: the message says what is wrong and how to fix it."""
