"""Bottom layer: deadlines, secrets, time parsing and the fair pool; imports nothing else of the exporter."""
