-- The webhook relay's deliveries: one row per push it took in (for the delivery-id dedupe, the
-- pushes it ignored and why, and which deploy job covered each push). The queue is procrastinate's.
CREATE TABLE relay_deliveries (
    id BIGSERIAL PRIMARY KEY,
    delivery VARCHAR(100) UNIQUE,
    repository VARCHAR(500) NOT NULL,
    branch VARCHAR(255) NOT NULL,
    before_sha VARCHAR(64),
    after_sha VARCHAR(64) NOT NULL,
    clone_url TEXT,
    relay_url TEXT,
    environment VARCHAR(50),
    status VARCHAR(20) NOT NULL,
    reason TEXT,
    job_id BIGINT,
    deploy_job_id BIGINT,
    deployments JSONB,
    received_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX relay_deliveries_pair ON relay_deliveries (repository, environment, status, id);
