"""Errors a user can act on. Each carries the exit code the CLI should end with."""


class PipeError(Exception):
    """Base for every error pipe reports in one line instead of a traceback."""

    exit_code = 1


class UsageError(PipeError):
    """The command line or a recipe is wrong: exit 2."""

    exit_code = 2


class RecipeError(UsageError):
    """A recipe file is invalid; the message names the file and the field."""


class BackendUnavailable(PipeError):
    """No backend answers, or it cannot run the recipe: exit 3."""

    exit_code = 3


class DatabaseError(UsageError):
    """The state database cannot be used as it is (not pipe's, damaged, read-only, full,
    newer): exit 2, with what to do."""
