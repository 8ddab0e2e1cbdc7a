"""kwsops tests, laid out like the code: one folder per family."""
