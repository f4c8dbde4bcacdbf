ALTER TABLE plugin_versions DROP COLUMN compatibility;
