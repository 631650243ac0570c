-- Why a deployment ran, a hash of its config, and the manifest it came from.
ALTER TABLE deployments ADD COLUMN reason TEXT;
ALTER TABLE deployments ADD COLUMN config_hash VARCHAR(64);
ALTER TABLE deployments ADD COLUMN manifest VARCHAR(500);
