-- A plugin version's requirement on the GLPI version (Cargo's semver requirement syntax, e.g.
-- `~10.0` or `>=10.0.10, <12`); NULL: offered to every GLPI. Keep in step with migrations/sqlite.
ALTER TABLE plugin_versions ADD COLUMN compatibility TEXT;
