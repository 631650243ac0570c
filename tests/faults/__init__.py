"""Fault tests: bojdeploy killed or cut off mid-deployment; the next run must finish or undo."""
