//! The governance service's tables (diesel), as the migrations make them.

diesel::table! {
    gov_counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    gov_context_items (id) {
        id -> Text,
        kind -> Text,
        title -> Text,
        description -> Text,
        requirements -> Text,
        owner -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_scopes (version) {
        version -> Integer,
        statement -> Text,
        services -> Text,
        locations -> Text,
        parties -> Text,
        exclusions -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    gov_roles (id) {
        id -> Text,
        name -> Text,
        responsibilities -> Text,
        authorities -> Text,
        holders -> Text,
        updated_by -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_competences (id) {
        id -> Text,
        person -> Text,
        role_id -> Nullable<Text>,
        competence -> Text,
        evidence -> Text,
        acquired_on -> Date,
        expires_on -> Nullable<Date>,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    gov_risks (id) {
        id -> Text,
        number -> Text,
        kind -> Text,
        title -> Text,
        description -> Text,
        category -> Text,
        owner -> Text,
        likelihood -> Integer,
        impact -> Integer,
        score -> Integer,
        level -> Text,
        treatment -> Text,
        treatment_plan -> Text,
        treatment_owner -> Text,
        treatment_due -> Nullable<Date>,
        state -> Text,
        review_interval_days -> Integer,
        last_reviewed_at -> Timestamp,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_objectives (id) {
        id -> Text,
        title -> Text,
        measure -> Text,
        owner -> Text,
        baseline -> Double,
        target -> Double,
        unit -> Text,
        direction -> Text,
        current_value -> Nullable<Double>,
        due_on -> Date,
        state -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_objective_progress (id) {
        id -> Text,
        objective_id -> Text,
        value -> Double,
        note -> Text,
        recorded_by -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    gov_documents (id) {
        id -> Text,
        reference -> Text,
        title -> Text,
        kind -> Text,
        clauses -> Text,
        owner -> Text,
        access_roles -> Text,
        retention_years -> Integer,
        review_interval_days -> Integer,
        status -> Text,
        current_version -> Nullable<Integer>,
        approved_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_document_versions (id) {
        id -> Text,
        document_id -> Text,
        version -> Integer,
        status -> Text,
        body -> Text,
        change_summary -> Text,
        author -> Text,
        reviewers -> Text,
        approver -> Text,
        submitted_at -> Nullable<Timestamp>,
        approved_at -> Nullable<Timestamp>,
        instance_outcome -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_audits (id) {
        id -> Text,
        number -> Text,
        title -> Text,
        criteria -> Text,
        clauses -> Text,
        area -> Text,
        area_members -> Text,
        lead_auditor -> Text,
        auditors -> Text,
        planned_for -> Date,
        state -> Text,
        checklist -> Text,
        report -> Text,
        started_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_findings (id) {
        id -> Text,
        audit_id -> Text,
        clause -> Text,
        kind -> Text,
        description -> Text,
        evidence -> Text,
        nonconformity_id -> Nullable<Text>,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    gov_nonconformities (id) {
        id -> Text,
        number -> Text,
        source -> Text,
        source_ref -> Text,
        clause -> Text,
        description -> Text,
        severity -> Text,
        state -> Text,
        reaction -> Text,
        root_cause -> Text,
        corrective_action -> Text,
        action_owner -> Text,
        action_due -> Nullable<Date>,
        effective -> Nullable<Bool>,
        effectiveness_notes -> Text,
        raised_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    gov_improvements (id) {
        id -> Text,
        number -> Text,
        title -> Text,
        description -> Text,
        source -> Text,
        benefit -> Nullable<Integer>,
        effort -> Nullable<Integer>,
        priority -> Nullable<Integer>,
        state -> Text,
        objective_id -> Nullable<Text>,
        plan -> Text,
        owner -> Text,
        due_on -> Nullable<Date>,
        expected -> Text,
        result -> Text,
        decided_by -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_reviews (id) {
        id -> Text,
        number -> Text,
        planned_for -> Date,
        period_from -> Date,
        period_to -> Date,
        state -> Text,
        inputs -> Text,
        attendees -> Text,
        minutes -> Text,
        decisions -> Text,
        held_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    gov_actions (id) {
        id -> Text,
        review_id -> Text,
        description -> Text,
        owner -> Text,
        due_on -> Nullable<Date>,
        state -> Text,
        outcome -> Text,
        closed_by -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    gov_ledger (seq) {
        seq -> BigInt,
        event_id -> Text,
        event_type -> Text,
        source -> Text,
        subject -> Text,
        actor -> Text,
        time -> Timestamp,
        payload_sha256 -> Text,
        data -> Text,
        prev_hash -> Text,
        hash -> Text,
        signature -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    gov_ledger_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    gov_checkpoints (seq) {
        seq -> BigInt,
        hash -> Text,
        signature -> Text,
        key_id -> Text,
        signed_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    gov_counters,
    gov_context_items,
    gov_scopes,
    gov_roles,
    gov_competences,
    gov_risks,
    gov_objectives,
    gov_objective_progress,
    gov_documents,
    gov_document_versions,
    gov_audits,
    gov_findings,
    gov_nonconformities,
    gov_improvements,
    gov_reviews,
    gov_actions,
    gov_ledger,
    gov_ledger_head,
    gov_checkpoints,
);
