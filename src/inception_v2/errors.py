"""The project's exception types, and the exit status ``inception-v2`` gives each.

Library code raises these (or the standard ``ValueError`` / ``OSError`` family); it never
prints or exits. The CLI (:mod:`inception_v2.cli`) is the one place that turns an exception
into a one-line ``error: ...`` message and an exit status:

====  ===========================================================================
   0  success
   1  a check failed: counts differ from the reference table, an exported file
      disagrees with PyTorch, INT8 accuracy dropped too far, the loss became NaN
   2  bad usage or bad input: a flag, a missing / unreadable / corrupt file
   3  the output folder is in use by another process
  70  an internal error (a bug): rerun with ``--debug`` for the traceback
 130  interrupted (Ctrl-C)
====  ===========================================================================
"""

import re

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class InceptionV2Error(Exception):
    """Base of the project's own errors."""


class UsageError(InceptionV2Error, ValueError):
    """Bad input from the user (a missing file, a malformed annotation, an unknown model...).

    The message must name the offending file or value and say what is wrong with it.
    ``inception-v2`` prints it as ``error: <message>`` and exits with status 2.
    """


class CheckFailedError(InceptionV2Error):
    """A verification the user asked for (or that guards an output) did not pass; exit 1."""


class LockedError(InceptionV2Error):
    """An output folder is owned by another running process; exit 3."""


def first_line(e: BaseException, with_type: bool = False) -> str:
    """The first line of ``e``'s message for a one-line error (its type's name when it has no
    message), without terminal colour codes (torch's unpickler puts some in its messages);
    ``with_type`` puts the type's name in front (``"ValueError: ..."``)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    if not text:
        return type(e).__name__
    return f"{type(e).__name__}: {text[0]}" if with_type else text[0]
