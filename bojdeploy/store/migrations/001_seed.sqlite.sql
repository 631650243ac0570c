-- The seed schema of DESIGN §5; JSON is stored as TEXT, timestamps as UTC ISO text.
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_type VARCHAR(50) NOT NULL,
    name VARCHAR(255) NOT NULL,
    environment VARCHAR(50) NOT NULL,
    status VARCHAR(50) NOT NULL,
    git_commit VARCHAR(255),
    git_branch VARCHAR(255),
    git_repository VARCHAR(500),
    config TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    error_message TEXT,
    rollback_from INTEGER REFERENCES deployments(id)
);
CREATE INDEX deployments_target ON deployments (environment, deployment_type, name);

CREATE TABLE deployment_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments(id),
    timestamp TIMESTAMP NOT NULL,
    level VARCHAR(20) NOT NULL,
    message TEXT NOT NULL,
    metadata TEXT
);
CREATE INDEX deployment_logs_deployment ON deployment_logs (deployment_id);
