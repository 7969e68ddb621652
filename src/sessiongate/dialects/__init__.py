"""The dialect plugin mechanism: the base every dialect subclasses, and the registry that finds them."""
