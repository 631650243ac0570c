"""`python -m bojdeploy`."""

from bojdeploy.frontends.cli import entry

entry()
