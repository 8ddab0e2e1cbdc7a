"""The operations console (`kwsops tui`): a Textual app over the files runs write.

It only reads state (run folders, the manifest, reports) and launches `kwsops run` processes;
see kwsops/tui/app.py for the entry point, ``main(workspace_root)``, and state.py for what
views read of the app. Views live in screens/, modal dialogs in dialogs/, shared widgets in
widgets/, and what is read from the workspace (no Textual) in readers/.
"""
