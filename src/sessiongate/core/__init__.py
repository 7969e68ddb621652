"""The gateway's own vocabulary: models, errors and the session service. Knows no dialect."""
