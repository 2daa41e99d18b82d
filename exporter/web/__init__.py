"""The HTTP server, TLS, the web configuration and the status page."""
