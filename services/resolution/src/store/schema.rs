//! The resolution service's tables (portable SQL types only). Chassis tables (outbox, inbox,
//! audit_log) are in `meridian_chassis::schema`.

diesel::table! {
    /// Incidents.
    incidents (id) {
        id -> Text,
        number -> Text,
        title -> Text,
        description -> Text,
        caller -> Text,
        service -> Nullable<Text>,
        /// JSON array of CI ids.
        configuration_items -> Text,
        category -> Nullable<Text>,
        impact -> Text,
        urgency -> Text,
        priority -> Integer,
        priority_override_reason -> Nullable<Text>,
        state -> Text,
        pending_reason -> Nullable<Text>,
        assignment_group -> Nullable<Text>,
        assignee -> Nullable<Text>,
        escalation_level -> Integer,
        major -> Bool,
        major_manager -> Nullable<Text>,
        resolution_code -> Nullable<Text>,
        resolution_notes -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    /// The history of each incident: every action and note, oldest first.
    incident_activity (id) {
        id -> Text,
        incident_id -> Text,
        at -> Timestamp,
        actor -> Text,
        kind -> Text,
        /// JSON object with the entry's details.
        details -> Text,
    }
}

diesel::table! {
    /// The service catalogue as resolution needs it (from service_level.service.* events).
    catalogue_services (id) {
        id -> Text,
        name -> Text,
        criticality -> Text,
        status -> Text,
        revision -> BigInt,
    }
}

diesel::table! {
    /// SQLite stand-in for PostgreSQL sequences.
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    incidents,
    incident_activity,
    problems,
    problem_incidents,
    problem_activity
);

diesel::table! {
    /// Alerts deduplicated into incidents.
    alert_links (source, fingerprint) {
        source -> Text,
        fingerprint -> Text,
        incident_id -> Text,
        status -> Text,
        count -> Integer,
        first_seen -> Timestamp,
        last_seen -> Timestamp,
    }
}

diesel::table! {
    /// Problems and known errors.
    problems (id) {
        id -> Text,
        number -> Text,
        title -> Text,
        description -> Text,
        service -> Nullable<Text>,
        /// JSON array.
        configuration_items -> Text,
        state -> Text,
        source -> Text,
        symptoms -> Text,
        root_cause -> Text,
        workaround -> Text,
        resolution -> Text,
        workaround_uses -> Integer,
        recurrences -> Integer,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    /// Incidents a problem explains.
    problem_incidents (problem_id, incident_id) {
        problem_id -> Text,
        incident_id -> Text,
        linked_by -> Text,
        linked_at -> Timestamp,
    }
}

diesel::table! {
    /// A problem's history and analysis.
    problem_activity (id) {
        id -> Text,
        problem_id -> Text,
        at -> Timestamp,
        actor -> Text,
        kind -> Text,
        details -> Text,
    }
}

diesel::table! {
    /// The CMDB as resolution needs it (from control.ci.changed events).
    known_cis (id) {
        id -> Text,
        name -> Text,
        class -> Text,
        owner -> Text,
        status -> Text,
        revision -> BigInt,
    }
}

diesel::table! {
    /// The request items of the catalogue (from service_level.service.* events).
    request_items (service_id, id) {
        service_id -> Text,
        id -> Text,
        name -> Text,
        description -> Text,
        /// JSON: the form (name → typed field).
        fields -> Text,
        workflow -> Nullable<Text>,
        needs_approval -> Bool,
    }
}

diesel::table! {
    /// Service requests.
    requests (id) {
        id -> Text,
        number -> Text,
        service_id -> Text,
        item_id -> Text,
        item_name -> Text,
        requested_by -> Text,
        requested_for -> Text,
        /// JSON: the form as filled in.
        fields -> Text,
        state -> Text,
        needs_approval -> Bool,
        workflow -> Nullable<Text>,
        approved_by -> Nullable<Text>,
        notes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// A request's history.
    request_history (id) {
        id -> Text,
        request_id -> Text,
        at -> Timestamp,
        actor -> Text,
        kind -> Text,
        details -> Text,
    }
}
