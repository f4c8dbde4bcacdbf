//! Diesel schema, written by hand so that one definition serves SQLite and PostgreSQL.

diesel::table! {
    offers (reference) {
        reference -> Text,
        title -> Text,
        rank -> Integer,
        entitlements -> Text,
    }
}

diesel::table! {
    subscribers (id) {
        id -> Text,
        name -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Text,
        subscriber_id -> Text,
        offer -> Text,
        begin_date -> Date,
        end_date -> Nullable<Date>,
        status -> Text,
        trial -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    registration_keys (id) {
        id -> Text,
        subscription_id -> Text,
        key_hash -> Text,
        key_prefix -> Text,
        status -> Text,
        expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        replaced_by -> Nullable<Text>,
        ver -> BigInt,
    }
}

diesel::table! {
    registrations (id) {
        id -> Text,
        key_id -> Text,
        instance_url -> Nullable<Text>,
        instance_uid -> Nullable<Text>,
        bound_at -> Timestamp,
        last_seen_at -> Timestamp,
        released_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        outcome -> Text,
        key_id -> Nullable<Text>,
        key_prefix -> Nullable<Text>,
        instance_url -> Nullable<Text>,
        instance_uid -> Nullable<Text>,
        client_addr -> Nullable<Text>,
        detail -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
        count -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        public_key -> Binary,
        private_key_enc -> Binary,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        active -> Bool,
        seeded -> Bool,
    }
}

diesel::joinable!(subscriptions -> subscribers (subscriber_id));
diesel::joinable!(registration_keys -> subscriptions (subscription_id));
diesel::joinable!(registrations -> registration_keys (key_id));

diesel::allow_tables_to_appear_in_same_query!(
    offers,
    subscribers,
    subscriptions,
    registration_keys,
    registrations,
    audit_events,
    signing_keys,
);

diesel::table! {
    plugins (key) {
        key -> Text,
        name -> Text,
        logo_url -> Text,
        homepage_url -> Text,
        issues_url -> Text,
        readme_url -> Text,
        changelog_url -> Text,
        license -> Text,
        note -> Double,
        download_count -> BigInt,
        authors -> Text,
        descriptions -> Text,
        tags -> Text,
        required_offers -> Nullable<Text>,
        date_added -> Timestamp,
        date_updated -> Timestamp,
    }
}

diesel::table! {
    plugin_versions (plugin_key, num) {
        plugin_key -> Text,
        num -> Text,
        stability -> Text,
        archive -> Binary,
        archive_sha256 -> Text,
        created_at -> Timestamp,
        compatibility -> Nullable<Text>,
    }
}

diesel::table! {
    meta (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::joinable!(plugin_versions -> plugins (plugin_key));
diesel::allow_tables_to_appear_in_same_query!(plugins, plugin_versions);

diesel::table! {
    rate_limits (kind, subject, window_start) {
        kind -> Text,
        subject -> Text,
        window_start -> BigInt,
        n -> BigInt,
    }
}

diesel::table! {
    plugin_terms (plugin_key) {
        plugin_key -> Text,
        commercial -> Bool,
        license_term_days -> Nullable<Integer>,
        price -> Nullable<Text>,
    }
}

diesel::table! {
    licenses (id) {
        id -> Text,
        subscriber_id -> Text,
        plugin_key -> Text,
        key_hash -> Text,
        key_prefix -> Text,
        status -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        instance_url -> Nullable<Text>,
        instance_uid -> Nullable<Text>,
        activated_at -> Nullable<Timestamp>,
        ver -> BigInt,
    }
}

diesel::table! {
    enrollment_keys (id) {
        id -> Text,
        subscriber_id -> Text,
        entity -> Text,
        key_hash -> Text,
        key_prefix -> Text,
        status -> Text,
        max_uses -> Integer,
        uses -> Integer,
        expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        ver -> BigInt,
    }
}

diesel::table! {
    enrollments (id) {
        id -> Text,
        enrollment_key_id -> Text,
        agent_id -> Text,
        hostname -> Nullable<Text>,
        mac -> Nullable<Text>,
        enrolled_at -> Timestamp,
        released_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        subscriber_id -> Text,
        role -> Text,
        key_hash -> Text,
        key_prefix -> Text,
        status -> Text,
        max_uses -> Integer,
        uses -> Integer,
        expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        ver -> BigInt,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        subscriber_id -> Text,
        name -> Text,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamp,
        failed_logins -> Integer,
        failed_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    web_sessions (token_hash) {
        token_hash -> Text,
        kind -> Text,
        account_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(accounts -> subscribers (subscriber_id));
diesel::joinable!(web_sessions -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(accounts, web_sessions);
diesel::allow_tables_to_appear_in_same_query!(accounts, subscribers);
diesel::allow_tables_to_appear_in_same_query!(web_sessions, subscribers);

diesel::joinable!(enrollments -> enrollment_keys (enrollment_key_id));
diesel::allow_tables_to_appear_in_same_query!(enrollment_keys, enrollments);

diesel::table! {
    webhooks (id) {
        id -> Text,
        url -> Text,
        events -> Text,
        description -> Nullable<Text>,
        secret_enc -> Binary,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_events (seq) {
        seq -> BigInt,
        id -> Text,
        #[sql_name = "type"]
        kind -> Text,
        created_at -> Timestamp,
        body -> Text,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        webhook_id -> Text,
        event_seq -> BigInt,
        status -> Text,
        attempts -> Integer,
        last_status -> Nullable<Integer>,
        next_attempt_at -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(webhook_deliveries -> webhook_events (event_seq));
diesel::allow_tables_to_appear_in_same_query!(webhook_deliveries, webhook_events, webhooks);
