"""The dashboard: server-rendered pages of what is deployed where, served by the relay at `/` and
read-only by `bojdeploy dashboard`."""
