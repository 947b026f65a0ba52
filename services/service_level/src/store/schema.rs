//! The service-level service's tables (portable SQL types only). Chassis tables (outbox, inbox,
//! audit_log) are in `meridian_chassis::schema`.

diesel::table! {
    /// The service catalogue.
    sl_services (id) {
        id -> Text,
        name -> Text,
        owner -> Text,
        description -> Text,
        outcome -> Text,
        /// JSON array.
        customers -> Text,
        /// JSON array of service ids.
        depends_on -> Text,
        /// JSON array of CI ids.
        configuration_items -> Text,
        criticality -> Text,
        status -> Text,
        /// JSON array of request items.
        request_items -> Text,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Business calendars.
    sl_calendars (id) {
        id -> Text,
        name -> Text,
        timezone -> Text,
        /// JSON: seven entries, Monday first, each null or {start, end} ("HH:MM").
        week -> Text,
        /// JSON array of dates.
        holidays -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// SLAs and OLAs.
    sl_agreements (id) {
        id -> Text,
        kind -> Text,
        name -> Text,
        service -> Text,
        customer -> Nullable<Text>,
        group_name -> Nullable<Text>,
        calendar_id -> Text,
        /// JSON: priority → {response_minutes, resolution_minutes}.
        targets -> Text,
        warning_percent -> Integer,
        /// JSON array.
        pause_reasons -> Text,
        workload_limit -> Text,
        exceptions -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Ticket history from resolution.
    sl_ticket_events (id) {
        id -> Text,
        ticket_id -> Text,
        ticket_kind -> Text,
        number -> Text,
        at -> Timestamp,
        event_type -> Text,
        state -> Text,
        pending_reason -> Text,
        priority -> Integer,
        group_name -> Text,
        service -> Text,
        major -> Bool,
    }
}

diesel::table! {
    /// SLA clocks as last computed.
    sl_clocks (id) {
        id -> Text,
        ticket_id -> Text,
        number -> Text,
        agreement_id -> Text,
        metric -> Text,
        service -> Text,
        priority -> Integer,
        target_seconds -> BigInt,
        elapsed_seconds -> BigInt,
        stage -> Text,
        due_at -> Nullable<Timestamp>,
        warn_at -> Nullable<Timestamp>,
        stopped_at -> Nullable<Timestamp>,
        warned -> Bool,
        breached -> Bool,
        next_check -> Nullable<Timestamp>,
        computed_at -> Timestamp,
    }
}

diesel::table! {
    /// Breaches and their investigation.
    sl_breaches (id) {
        id -> Text,
        clock_id -> Text,
        ticket_id -> Text,
        number -> Text,
        agreement_id -> Text,
        metric -> Text,
        service -> Text,
        due_at -> Timestamp,
        detected_at -> Timestamp,
        cause -> Nullable<Text>,
        cause_category -> Nullable<Text>,
        investigated_by -> Nullable<Text>,
        investigated_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    sl_services,
    sl_calendars,
    sl_agreements,
    sl_ticket_events,
    sl_clocks,
    sl_breaches,
);
