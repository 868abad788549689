"""Clinic networks: the monthly run for many branches, serially or on a Dask cluster, and the network summary."""

from crm_analysis.network.config import ClinicSpec, NetworkConfig, is_network_config, read_network_config
from crm_analysis.network.run import run_network

__all__ = ["ClinicSpec", "NetworkConfig", "is_network_config", "read_network_config", "run_network"]
