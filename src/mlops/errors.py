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


class RetrainNeeded(MlopsError):
    """The monitor found a reason to retrain (drift, degraded performance, or both): exit 5,
    the monitor workflow's retrain trigger. reason is the monitor's `reason` step output."""

    exit_code = 5
    reason = "drift and performance"


class DriftDetected(RetrainNeeded):
    """Collected inputs have drifted from the training data beyond the thresholds."""

    reason = "drift"


class PerformanceDegraded(RetrainNeeded):
    """On labelled requests, a gated metric of the served model is past its bound."""

    reason = "performance"


class EndpointTestFailed(MlopsError):
    """A live endpoint failed its test: the endpoint is at fault, not the command's input."""

    exit_code = 6
