"""Widgets more than one screen uses: the top line of views, the log view over a line index,
tables sized to the terminal."""
