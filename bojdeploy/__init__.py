"""bojdeploy: GitOps deployment orchestrator for Gitea."""

__version__ = "0.1.0"
