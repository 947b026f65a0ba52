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
        /// JSON array: `incident`, `request`.
        applies_to -> Text,
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

diesel::table! {
    /// Availability targets.
    sl_availability_targets (service) {
        service -> Text,
        target_percent -> Double,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Outages.
    sl_outages (id) {
        id -> Text,
        service -> Text,
        started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        planned -> Bool,
        source -> Text,
        ticket_id -> Nullable<Text>,
        description -> Text,
        investigation -> Nullable<Text>,
        recorded_by -> Text,
    }
}

diesel::table! {
    /// Continuity plans.
    sl_continuity_plans (id) {
        id -> Text,
        service -> Text,
        name -> Text,
        strategy -> Text,
        rto_minutes -> Integer,
        rpo_minutes -> Integer,
        test_interval_days -> Integer,
        owner -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Tests and invocations of continuity plans.
    sl_continuity_events (id) {
        id -> Text,
        plan_id -> Text,
        kind -> Text,
        at -> Timestamp,
        scenario -> Text,
        result -> Text,
        notes -> Text,
        recorded_by -> Text,
    }
}

diesel::table! {
    /// Capacity plans.
    sl_capacity_plans (id) {
        id -> Text,
        service -> Text,
        name -> Text,
        human -> Text,
        technical -> Text,
        financial -> Text,
        /// JSON array of {metric, warning, critical}.
        thresholds -> Text,
        owner -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Utilisation measurements.
    sl_measurements (id) {
        id -> Text,
        service -> Text,
        metric -> Text,
        value -> Double,
        at -> Timestamp,
        source -> Text,
    }
}

diesel::table! {
    /// Demand forecasts.
    sl_forecasts (id) {
        id -> Text,
        service -> Text,
        period -> Text,
        metric -> Text,
        expected -> Double,
        notes -> Text,
    }
}

diesel::table! {
    /// Budgets.
    sl_budgets (service, period) {
        service -> Text,
        period -> Text,
        amount -> Double,
        currency -> Text,
    }
}

diesel::table! {
    /// Costs.
    sl_costs (id) {
        id -> Text,
        service -> Text,
        period -> Text,
        amount -> Double,
        category -> Text,
        description -> Text,
        incurred_on -> Date,
        recorded_by -> Text,
    }
}

diesel::table! {
    /// Changes, as reporting needs them (from control's events).
    sl_changes (id) {
        id -> Text,
        number -> Text,
        configuration_items -> Text,
        state -> Text,
        submitted_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Satisfaction scores (from relationship's events).
    sl_satisfaction (id) {
        id -> Text,
        service -> Text,
        customer -> Text,
        score -> Integer,
        at -> Timestamp,
    }
}
