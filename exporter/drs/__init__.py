"""The DRS API: transport, authentication, clients and the parsers of its answers."""
