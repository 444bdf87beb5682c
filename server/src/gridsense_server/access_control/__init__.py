"""Access control on the server: the access log, residents' credentials, sync to gateways."""
