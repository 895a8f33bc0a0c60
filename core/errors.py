"""The named exceptions of clipmark. The web app maps them to gr.Error; the CLI to exit codes."""


class ClipmarkError(Exception):
    """Base of every error clipmark raises on purpose."""


class InvalidInput(ClipmarkError, ValueError):
    """A value from the user (argument, file, field) is not acceptable; the message names it."""


class NotFound(ClipmarkError, LookupError):
    """A project, image, class or user that was asked for does not exist."""


class Conflict(ClipmarkError):
    """The request contradicts the current state (duplicate name, stale undo, leased item)."""


class PermissionDenied(ClipmarkError):
    """The acting user's role does not allow the action."""


class ModelLoadError(ClipmarkError):
    """Model weights or configuration could not be loaded; the message says how to fix it."""


class ImageError(InvalidInput):
    """One image file is unusable. `source` names the file, `reason` says why."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
