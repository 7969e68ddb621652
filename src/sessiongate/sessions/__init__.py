"""The services on top of storage that every dialect and the gateway API share: sessions, and their audit events."""
