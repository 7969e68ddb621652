"""The gateway's own API, under one prefix: forward auth, token introspection and revocation, API credentials."""
