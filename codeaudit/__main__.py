from __future__ import annotations

from codeaudit.entry import main

if __name__ == "__main__":  # pragma: no cover
    main()
