"""The one exception type the CLI turns into a single clear line and a non-zero exit."""


class DimbenchError(Exception):
    """A problem the user can act on (bad input, unreachable server, ...).

    The message must fit on one line and say what to do; the CLI prints it without a traceback.
    """
