//! The control service's tables (portable SQL types only). Chassis tables (outbox, inbox,
//! audit_log) are in `meridian_chassis::schema`.

diesel::table! {
    /// Configuration items.
    cis (id) {
        id -> Text,
        ci_type -> Text,
        name -> Text,
        owner -> Text,
        status -> Text,
        environment -> Text,
        criticality -> Text,
        /// JSON object, checked against the type's schema.
        attributes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// `source <kind> target`.
    ci_relations (id) {
        id -> Text,
        source -> Text,
        kind -> Text,
        target -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    cis,
    ci_relations,
    changes,
    releases,
    baselines,
    deployments
);

diesel::table! {
    /// Changes.
    changes (id) {
        id -> Text,
        number -> Text,
        title -> Text,
        reason -> Text,
        category -> Text,
        template -> Nullable<Text>,
        requester -> Text,
        /// JSON array of CI ids.
        configuration_items -> Text,
        window_start -> Nullable<Timestamp>,
        window_end -> Nullable<Timestamp>,
        implementation_plan -> Text,
        test_plan -> Text,
        backout_plan -> Text,
        state -> Text,
        /// JSON: the approval decision (outcome, who decided, the votes).
        decision -> Nullable<Text>,
        /// JSON: the post-implementation review.
        review -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        /// JSON: the risk score, factor by factor (computed on submit).
        risk -> Nullable<Text>,
        /// JSON: service design and transition (8.5.2): whether required and why, the plan,
        /// the acceptance criteria, the acceptance record.
        design -> Nullable<Text>,
        /// Where it came from when another record raised it (`problem:PRB0001000`).
        origin -> Nullable<Text>,
    }
}

diesel::table! {
    /// Number counters (SQLite only; PostgreSQL uses sequences).
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    /// Releases.
    releases (id) {
        id -> Text,
        name -> Text,
        version -> Text,
        /// JSON array of change ids.
        changes -> Text,
        acceptance_criteria -> Text,
        /// JSON: the latest test results.
        test_results -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Baselines: snapshots of sets of CIs.
    baselines (id) {
        id -> Text,
        name -> Text,
        /// JSON array of CI rows.
        snapshot -> Text,
        taken_by -> Text,
        taken_at -> Timestamp,
    }
}

diesel::table! {
    /// Deployments.
    deployments (id) {
        id -> Text,
        release_id -> Text,
        environment -> Text,
        /// `succeeded` or `failed`.
        outcome -> Text,
        notes -> Text,
        baseline_id -> Text,
        deployed_by -> Text,
        deployed_at -> Timestamp,
    }
}

diesel::table! {
    /// Configuration audits.
    config_audits (id) {
        id -> Text,
        name -> Text,
        baseline_id -> Text,
        /// `open` while a discrepancy is unresolved, then `closed`.
        status -> Text,
        /// JSON array: each difference found, with its resolution.
        discrepancies -> Text,
        run_by -> Text,
        run_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// Licences and contracts.
    assets (id) {
        id -> Text,
        /// `licence` or `contract`.
        kind -> Text,
        name -> Text,
        vendor -> Text,
        /// Seats, units or instances bought.
        quantity -> BigInt,
        expires_on -> Nullable<Date>,
        /// JSON array of the CI ids it covers.
        cis -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// The change gate's decisions.
    gate_decisions (id) {
        id -> Text,
        review_uid -> Text,
        decided_at -> Timestamp,
        username -> Text,
        /// JSON array.
        groups -> Text,
        operation -> Text,
        kind -> Text,
        namespace -> Text,
        name -> Text,
        allowed -> Bool,
        break_glass -> Bool,
        dry_run -> Bool,
        change_id -> Nullable<Text>,
        reason -> Text,
    }
}
