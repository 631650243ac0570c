"""The webhook relay: signed Gitea webhooks into a PostgreSQL queue, deployed by the engine.

`config` reads the settings, `webhook` takes deliveries in, `tasks` routes and deploys them on
procrastinate workers, `job` runs one deploy through the engine, `app` assembles the HTTP routers
and `serve` runs the relay and workers. Imported only by `bojdeploy relay` and `bojdeploy worker`.
"""
