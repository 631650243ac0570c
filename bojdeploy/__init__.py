"""bojdeploy: GitOps deployment orchestrator for Gitea."""

# The one place the version is set: pyproject.toml reads it, `bojdeploy --version` shows it, the
# action image's labels carry it and every deployment record keeps it (config.deployed).
__version__ = "0.1.0"
