"""The gateway's own vocabulary: models, errors, the storage seam and page cursors.

Knows no dialect, no Litestar, no SQL."""
