"""Metric families built fresh from the sources' data."""
