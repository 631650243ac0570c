-- The dashboard's reads on a long history: the newest row per target (overview), history newest
-- first under each filter (keyset paging by id), and the rollbacks that restored a deployment.
CREATE INDEX deployments_target_id ON deployments (environment, deployment_type, name, id);
CREATE INDEX deployments_environment_id ON deployments (environment, id);
CREATE INDEX deployments_name_id ON deployments (name, id);
CREATE INDEX deployments_status_id ON deployments (status, id);
CREATE INDEX deployments_rollback_from ON deployments (rollback_from);
