"""The Gitea Action front end (`entrypoint.py` calls `run.main`)."""
