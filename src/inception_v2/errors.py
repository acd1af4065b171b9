"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class UsageError(ValueError):
    """Bad input from the user (a missing file, a malformed annotation, an unknown model...).

    The message must name the offending file or value and say what is wrong with it.
    ``inception-v2`` prints it as ``error: <message>`` and exits with status 2.
    """
