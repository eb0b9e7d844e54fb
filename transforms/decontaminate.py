"""Stage transforms: not built yet (see the open issues)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecontaminateParams:
    """Parameters of this stage; fields arrive with the stage."""
