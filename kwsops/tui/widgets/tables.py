"""Tables that fit the terminal: columns sized to its width, rows updated in place."""

from __future__ import annotations

from textual.widgets import DataTable


def set_columns(table: DataTable, columns: tuple, width: int) -> int:
    """(Re)create the columns; a column of width None takes what is left of ``width``, so the
    table never needs a horizontal scrollbar for its last column. Returns that width."""
    fixed = sum(w + 2 * table.cell_padding for _, _, w in columns if w)
    flexible = max(12, width - fixed - 2 * table.cell_padding - 2)
    table.clear(columns=True)
    for key, title, column_width in columns:
        table.add_column(title, key=key, width=column_width or flexible)
    return flexible


def fill_table(
    table: DataTable, keys: list[str], cells: list[tuple], *, wrap: bool = False
) -> None:
    """Update in place when the rows are the same ones, else rebuild keeping the cursor.
    ``wrap``: rows as tall as their cells (DataTable measures a row's height when it is
    added, so a changed row means a rebuild)."""
    current = [row.value for row in table.rows]
    if wrap and current == keys:
        if all(
            table.get_cell(key, column) == value
            for key, row in zip(keys, cells, strict=True)
            for column, value in zip(table.columns, row, strict=True)
        ):
            return
        current = []
    if current == keys:
        for key, row in zip(keys, cells, strict=True):
            for column, value in zip(table.columns, row, strict=True):
                if table.get_cell(key, column) != value:
                    table.update_cell(key, column, value)
        return
    cursor, scroll = table.cursor_row, table.scroll_y
    table.clear()
    for key, row in zip(keys, cells, strict=True):
        table.add_row(*row, key=key, height=None if wrap else 1)
    if keys:
        table.move_cursor(row=min(cursor, len(keys) - 1), animate=False, scroll=False)
    table.scroll_to(y=scroll, animate=False)
