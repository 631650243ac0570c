"""Front ends: the CLI, the Gitea Action and (to come) the webhook relay, all over one engine."""
