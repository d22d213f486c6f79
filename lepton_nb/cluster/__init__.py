"""Launch or connect to Dask clusters (CPU or GPU) from a notebook."""

from lepton_nb.cluster._attach import clusters
from lepton_nb.cluster._gpu import GPUInfo, detect_gpus
from lepton_nb.cluster._handle import Cluster
from lepton_nb.cluster._kinds import CLUSTER_KINDS, ClusterKind, LaunchSpec
from lepton_nb.cluster._launch import connect, launch_cluster
from lepton_nb.cluster._profiles import get_profile, list_profiles

__all__ = [
    "CLUSTER_KINDS",
    "Cluster",
    "ClusterKind",
    "GPUInfo",
    "LaunchSpec",
    "clusters",
    "connect",
    "detect_gpus",
    "get_profile",
    "launch_cluster",
    "list_profiles",
]
