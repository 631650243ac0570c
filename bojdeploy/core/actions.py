"""The closed vocabulary of plan actions."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What a plan step does to one resource."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    UNCHANGED = "unchanged"
