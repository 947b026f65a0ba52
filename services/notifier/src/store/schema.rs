//! The notifier's tables (portable SQL types only). Chassis tables (outbox, inbox, audit_log)
//! are in `meridian_chassis::schema`.

diesel::table! {
    /// People and how to reach them.
    nt_recipients (user_id) {
        user_id -> Text,
        display_name -> Text,
        email -> Nullable<Text>,
        slack_webhook -> Nullable<Text>,
        teams_webhook -> Nullable<Text>,
        /// JSON array.
        roles -> Text,
        /// JSON array.
        groups -> Text,
        channel -> Text,
        quiet_start -> Nullable<Text>,
        quiet_end -> Nullable<Text>,
        timezone -> Text,
        active -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Routing rules.
    nt_rules (id) {
        id -> Text,
        name -> Text,
        event_pattern -> Text,
        audience_kind -> Text,
        audience -> Text,
        channel -> Text,
        destination -> Nullable<Text>,
        urgent -> Bool,
        subject_template -> Nullable<Text>,
        body_template -> Nullable<Text>,
        enabled -> Bool,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Notifications and their delivery state.
    nt_notifications (id) {
        id -> Text,
        event_id -> Text,
        event_type -> Text,
        subject -> Text,
        recipient -> Text,
        channel -> Text,
        destination -> Text,
        template -> Text,
        title -> Text,
        /// JSON: what the message is rendered from when sent.
        context -> Text,
        link_id -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// One-click action links.
    nt_links (id) {
        id -> Text,
        task_id -> Text,
        approver -> Text,
        definition -> Text,
        business_key -> Text,
        title -> Text,
        /// JSON array.
        outcomes -> Text,
        /// JSON.
        summary -> Text,
        /// JSON: the task's form (name → field).
        form -> Text,
        state -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
        comment -> Nullable<Text>,
        result -> Nullable<Text>,
        result_code -> Nullable<Text>,
        result_detail -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        void_reason -> Nullable<Text>,
    }
}

diesel::table! {
    /// Token hashes of the links.
    nt_link_tokens (token_hash) {
        token_hash -> Text,
        link_id -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// Outbound webhook subscriptions.
    nt_webhooks (id) {
        id -> Text,
        url -> Text,
        /// JSON array of routing-key patterns.
        event_types -> Text,
        secret -> Text,
        description -> Text,
        active -> Bool,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// The delivery log of the subscriptions.
    nt_deliveries (id) {
        id -> Text,
        webhook_id -> Text,
        event_id -> Text,
        event_type -> Text,
        body -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        response_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(nt_link_tokens -> nt_links (link_id));
diesel::joinable!(nt_deliveries -> nt_webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(
    nt_recipients,
    nt_rules,
    nt_notifications,
    nt_links,
    nt_link_tokens,
    nt_webhooks,
    nt_deliveries,
);
