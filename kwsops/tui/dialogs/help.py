"""Every key of every view, in one scrollable page (``?``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

HELP = """\
# kwsops console

Launch, watch, read and compare keyword-spotting runs without leaving the terminal.
Runs are separate processes: close the console and the run goes on; open it again and it
reattaches. Every action is also in the command palette (**ctrl+p**), under the name the
footer gives it.

## Everywhere

| key | action |
| --- | --- |
| **1** … **6** | Dashboard, Logs, Report, Runs, Data, Curves (the top line; a click works too) |
| **s** | start a run: batch sizes, epochs, folds, learning rate, revisions to compare |
| **c** | cancel the active run (asks first; its running tasks end as cancelled) |
| **R** | rerun the last failed run: the same command and resolved parameters |
| **ctrl+p** | command palette |
| **?** | this help |
| **q** | quit (a run keeps running) |

## Logs

| key | action |
| --- | --- |
| **/** | search; **n** / **N** next / previous match (wraps around) |
| **f** | filter: show only matching lines (empty: all lines) |
| **Esc** | clear search and filter, follow again |
| **End** / **G** | follow the end of the log; scrolling up pauses |
| **g** / **Home**, **PgUp** / **PgDn**, arrows, **j** **k** **h** **l** | move |
| **a** | follow the active run's log (a run started here is followed by itself) |
| **o** | open another run's log |

## Report

| key | action |
| --- | --- |
| **v** | the report's figures: confusion matrices as heat maps, parameters that differ |
| **t** | show or hide the table of contents |
| **b** | back to the comparison report |
| **w** | open it in the web browser (the HTML page), when there is one |
| **p** | promote a revision: a version of the model and its stage (GTO tags in git) |

## Runs

| key | action |
| --- | --- |
| **Enter** | the selected run's log |
| **m** / **w** | its run report here / in the web browser |
| **f** | filter by outcome (all, running, ok, failed, cancelled, killed) |
| **o** / **O** | sort by the next column / reverse (or click a column's title) |
| **space**, then **d** | mark a run, then compare it with the selected one |
| **R** | rerun the selected run |

## Data, Curves

| key | action |
| --- | --- |
| **r** | Data: read the manifest again |
| **v** | Data: verify every versioned file against its DVC hash (`kwsops verify`) |
| **Curves** | validation accuracy and loss by epoch, one line per fold, live while a run trains |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Markdown(HELP)
        yield Footer(compact=True)

    def action_close(self) -> None:
        self.dismiss(None)
