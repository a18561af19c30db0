"""``python -m lmthing ...``: the same command as ``lmthing ...``."""

from lmthing.cli import main

if __name__ == "__main__":
    main()
