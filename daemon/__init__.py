"""eboxd: e-Box Enterprise to bank and accountant."""

from __future__ import annotations

__version__ = "0.1.0"
