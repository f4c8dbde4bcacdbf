DROP TABLE signing_keys;
DROP TABLE audit_events;
DROP TABLE registrations;
DROP TABLE registration_keys;
DROP TABLE subscriptions;
DROP TABLE subscribers;
DROP TABLE offers;
