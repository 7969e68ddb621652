"""``python -m sessiongate`` runs the command line."""

from __future__ import annotations

from sessiongate.cli import main

if __name__ == "__main__":
    main()
