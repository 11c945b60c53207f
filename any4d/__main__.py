"""``python -m any4d`` runs the ``any4d`` command."""

from any4d.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
