DROP TABLE meta;
DROP TABLE plugin_versions;
DROP TABLE plugins;
