"""The gRPC API: the generated ``carddaemon.v1`` code (``daemon.api.v1``) and the servicers."""
