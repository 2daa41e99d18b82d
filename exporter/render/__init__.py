"""Exposition bytes: cached renderings joined per scrape, and gzip made of cached blocks."""
