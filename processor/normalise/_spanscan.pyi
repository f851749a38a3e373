"""Type stub of the optional C accelerator ``_spanscan.c`` (see the C file for the contract)."""

from collections.abc import Iterable
from typing import Any

class Table: ...

def make_table(keys: dict[str, tuple[int, int]], nslots: int, markers: Iterable[str], doc_prefix: str,
               doc_suffix: str, unusable: object) -> Table: ...
def scan(table: Table, data: bytes) -> list[tuple[list[tuple[int, Any]], list[tuple[Any, ...]], int]] | None: ...
