//! The chassis tables every service database has (portable SQL types only).

diesel::table! {
    /// Events committed with a state change, waiting for the relay to publish them.
    outbox (seq) {
        seq -> BigInt,
        message_id -> Text,
        event_type -> Text,
        source -> Text,
        subject -> Text,
        occurred_at -> Timestamp,
        correlation_id -> Nullable<Text>,
        causation_id -> Nullable<Text>,
        actor -> Nullable<Text>,
        payload -> Binary,
    }
}

diesel::table! {
    /// Message ids a consumer has handled: a redelivery finds its id here and has no effect.
    inbox (consumer, message_id) {
        consumer -> Text,
        message_id -> Text,
        handled_at -> Timestamp,
    }
}

diesel::table! {
    /// Who changed what, when, from what to what: one row per state change, in its transaction.
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        entity_type -> Text,
        entity_id -> Text,
        before -> Nullable<Text>,
        after -> Nullable<Text>,
        trace_id -> Nullable<Text>,
    }
}
