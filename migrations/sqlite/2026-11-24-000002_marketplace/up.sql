-- The plugin catalogue (SQLite). Keep in step with migrations/postgres.
CREATE TABLE plugins (
    key TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    logo_url TEXT NOT NULL DEFAULT '',
    homepage_url TEXT NOT NULL DEFAULT '',
    issues_url TEXT NOT NULL DEFAULT '',
    readme_url TEXT NOT NULL DEFAULT '',
    changelog_url TEXT NOT NULL DEFAULT '',
    license TEXT NOT NULL DEFAULT '',
    note DOUBLE PRECISION NOT NULL DEFAULT 0,
    download_count BIGINT NOT NULL DEFAULT 0,
    authors TEXT NOT NULL DEFAULT '[]',       -- JSON [{id, name}]
    descriptions TEXT NOT NULL DEFAULT '[]',  -- JSON [{lang, short_description, long_description}]
    tags TEXT NOT NULL DEFAULT '[]',          -- JSON [{key, tag}]
    required_offers TEXT,                     -- JSON array of offer references, NULL when free
    date_added TIMESTAMP NOT NULL,
    date_updated TIMESTAMP NOT NULL
);

CREATE TABLE plugin_versions (
    plugin_key TEXT NOT NULL REFERENCES plugins(key) ON DELETE CASCADE,
    num TEXT NOT NULL,
    stability TEXT NOT NULL,
    archive BLOB NOT NULL,
    archive_sha256 TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (plugin_key, num)
);

-- Small facts about the deployment (e.g. whether the demo plugins were seeded).
CREATE TABLE meta (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
