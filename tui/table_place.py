"""Lists hold still: after a table is filled again, its cursor goes back to the item it was on.

Profiles and Review rebuild their DataTable when a read brings new rows. Rows that arrive above
the cursor, or an item that moves up its order, used to leave the cursor on the same row index,
so on another item: Enter, y or a decision then acted on a row the operator never chose.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable


def place_cursor(table: DataTable[object], keys: Sequence[str], chosen: str | None, old_row: int,
                 old_top: int) -> int:
    """Put the cursor of a table just filled with rows `keys` on `chosen` (the key of the item it
    was on) if it is still listed, else at its old position `old_row` (the item after the one
    that left, or the last); and keep that row on the line of the screen it was drawn on
    (`old_top`: the table's scroll offset before). Returns the row."""
    if not keys:
        return 0
    row = min(old_row, len(keys) - 1)
    if chosen is not None:
        row = next((i for i, key in enumerate(keys) if key == chosen), row)
    table.move_cursor(row=row, scroll=False)
    top = max(0, row - (old_row - old_top))
    # Now, as far as the old height allows (the table measures its new rows only when idle), so the
    # next frame is drawn there already; and again once it has measured them.
    table.scroll_to(y=top, animate=False, immediate=True)
    table.call_after_refresh(table.scroll_to, y=top, animate=False, immediate=True)
    return row
