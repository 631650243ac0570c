"""Stand-ins for systems that cannot run here (Gitea); the XAPI simulator ships in the package."""
