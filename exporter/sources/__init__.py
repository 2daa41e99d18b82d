"""Data sources read from DRS: the snapshot cache, the background readers and their guards."""
