-- Per-installation values, such as the key used to HMAC secrets.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
