DROP TABLE web_sessions;
DROP TABLE accounts;
