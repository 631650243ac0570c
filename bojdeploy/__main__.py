"""`python -m bojdeploy`."""

from bojdeploy.cli import entry

entry()
