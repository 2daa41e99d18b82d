"""Prometheus exporter for Huawei Cloud Data Replication Service (DRS) progress data."""

__version__ = "0.1.0"
