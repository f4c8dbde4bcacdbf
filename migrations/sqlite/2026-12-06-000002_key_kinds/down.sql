-- accounts stay: the portal's migration owns them
DROP TABLE invitations;
DROP TABLE enrollments;
DROP TABLE enrollment_keys;
DROP TABLE licenses;
DROP TABLE plugin_terms;
