"""The console's views, one per mode (keys 1-6): Dashboard, Logs, Report, Runs, Data, Curves.

A screen reads the app's state through ``kwsops.tui.state.console_app`` and asks the app for
any change; it never writes that state."""
