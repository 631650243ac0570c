-- What the relay's drift watch last saw, one row per recorded resource of a repository in an
-- environment (repository '' when the records name none); replaced on every check.
CREATE TABLE drift_states (
    environment VARCHAR(50) NOT NULL,
    kind VARCHAR(50) NOT NULL,
    name VARCHAR(255) NOT NULL,
    repository VARCHAR(500) NOT NULL DEFAULT '',
    drifted BOOLEAN NOT NULL,
    state VARCHAR(50) NOT NULL,
    detail TEXT NOT NULL,
    deployment_id INTEGER,
    checked_at TIMESTAMP NOT NULL,
    PRIMARY KEY (environment, kind, name, repository)
);
