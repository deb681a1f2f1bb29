"""Errors a user can cause: the CLI prints their message as one sentence and exits non-zero."""


class MlopsError(Exception):
    """A refusal with a clear, one-sentence reason; never shown as a traceback."""

    exit_code = 2


class ConfigError(MlopsError):
    """An environment file is missing a field or holds a bad value."""


class GateRefused(MlopsError):
    """The challenger did not pass the gate."""

    exit_code = 3


class RolloutFailed(MlopsError):
    """A new deployment failed to start or failed its smoke test; the old one still serves."""

    exit_code = 4


class DriftDetected(MlopsError):
    """Collected inputs have drifted from the training data beyond the thresholds."""

    exit_code = 5


class EndpointTestFailed(MlopsError):
    """A live endpoint failed its test: the endpoint is at fault, not the command's input."""

    exit_code = 6
