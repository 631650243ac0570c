-- Fleets: the named host a deployment ran on ('' = the environment's default target, which every
-- record made before fleets keeps).
ALTER TABLE deployments ADD COLUMN host VARCHAR(255) NOT NULL DEFAULT '';
CREATE INDEX deployments_target_host ON deployments (environment, deployment_type, name, host);
