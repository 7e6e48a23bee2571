"""pytest plugin for chronopype_testing (filled in by the FakeClock work)."""
