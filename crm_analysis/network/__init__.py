"""Clinic networks: the monthly run for many branches, serially or on a Dask cluster, and the network summary."""

from crm_analysis.network.config import ClinicSpec, NetworkConfig, is_network_config, read_network_config

__all__ = ["ClinicSpec", "NetworkConfig", "is_network_config", "read_network_config", "run_network"]


def __getattr__(name: str):
    # run_network brings the whole monthly engine; imported when first used, so that the command line can
    # tell a network config from a clinic's data (is_network_config) before it imports the analysis stack
    if name == "run_network":
        from crm_analysis.network.run import run_network

        return run_network
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
