"""What every command says when something goes wrong: `UserError` (bad input from the user, which a
CLI prints as one line and exits 2 with, `gans.cli.main_guard`) and `first_line`, the part of a
library's exception a one-line message can quote.
"""

from __future__ import annotations

class UserError(Exception):
    """Bad input from the user; CLIs print it as one line and exit with code 2."""


def first_line(e: BaseException) -> str:
    """The first line of `e`'s message ("" if it has none): what a one-line error can quote of a
    library's exception, whose messages often run to many lines."""
    text = str(e).strip()
    return text.splitlines()[0] if text else ""
