"""The one error tree of lepton_nb.

Every error a user can cause derives from :class:`LeptonError`, so notebooks and the server can
catch one type.  Each message says what was wrong and how to fix it.
"""

from __future__ import annotations


class LeptonError(Exception):
    """Root of every lepton_nb error."""


class ConfigError(LeptonError, ValueError):
    """An argument or setting is invalid (caught before anything starts)."""


class ClusterError(LeptonError):
    """A cluster could not be launched, reached, or used."""


class GPUUnavailableError(ClusterError):
    """GPUs were required but none were found."""


class TrainingError(LeptonError):
    """Training failed on the cluster (after any allowed restarts)."""


class CheckpointError(LeptonError):
    """A checkpoint is missing, truncated, or unsafe to load."""


class CompressionError(LeptonError):
    """A model cannot be compressed as asked."""


class JobError(LeptonError):
    """A notebook job could not be run, found, or recorded."""


class StorageError(LeptonError):
    """A storage URL cannot be used: unknown protocol, unreachable, no such bucket, denied."""


class NotFoundError(LeptonError, KeyError):
    """A named thing (job, cluster, strategy, method) does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


__all__ = [
    "CheckpointError",
    "ClusterError",
    "CompressionError",
    "ConfigError",
    "GPUUnavailableError",
    "JobError",
    "LeptonError",
    "NotFoundError",
    "StorageError",
    "TrainingError",
]
