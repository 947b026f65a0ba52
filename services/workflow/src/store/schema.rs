//! The workflow service's tables (portable SQL types only). Chassis tables (outbox, inbox,
//! audit_log) are in `meridian_chassis::schema`.

diesel::table! {
    /// Deployed definition versions.
    wf_definitions (id, version) {
        id -> Text,
        version -> Text,
        name -> Text,
        source -> Text,
        /// `file` or `api`.
        origin -> Text,
        deployed_by -> Text,
        deployed_at -> Timestamp,
    }
}

diesel::table! {
    /// Instances; `state` is the interpreter's state as JSON.
    wf_instances (id) {
        id -> Text,
        definition -> Text,
        version -> Text,
        business_key -> Text,
        initiator -> Text,
        status -> Text,
        outcome -> Nullable<Text>,
        /// Why a token is stuck, if one is.
        incident -> Nullable<Text>,
        parent_id -> Nullable<Text>,
        state -> Text,
        started_at -> Timestamp,
        updated_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Human tasks.
    wf_tasks (id) {
        id -> Text,
        instance_id -> Text,
        node -> Text,
        name -> Text,
        /// `open`, `completed` or `withdrawn`.
        state -> Text,
        assignee -> Nullable<Text>,
        /// JSON array of the users segregation of duties excludes.
        forbidden -> Text,
        created_at -> Timestamp,
        due_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        completed_by -> Nullable<Text>,
        outcome -> Nullable<Text>,
        comment -> Nullable<Text>,
        /// JSON object of the form's fields.
        fields -> Nullable<Text>,
    }
}

diesel::table! {
    /// Candidates of tasks: `kind` is `user` or `role`.
    wf_task_candidates (task_id, kind, name) {
        task_id -> Text,
        kind -> Text,
        name -> Text,
    }
}

diesel::table! {
    /// Multi-instance decisions: one per person per round.
    wf_decisions (instance_id, node, round, decided_by) {
        instance_id -> Text,
        node -> Text,
        round -> Integer,
        decided_by -> Text,
        task_id -> Text,
    }
}

diesel::table! {
    /// Pending timers.
    wf_timers (instance_id, timer_id) {
        instance_id -> Text,
        timer_id -> Integer,
        due_at -> Timestamp,
    }
}

diesel::table! {
    /// Awaited bus events.
    wf_subscriptions (instance_id, event_type, subject) {
        instance_id -> Text,
        event_type -> Text,
        subject -> Text,
    }
}

diesel::table! {
    /// Every step.
    wf_history (id) {
        id -> Text,
        instance_id -> Text,
        at -> Timestamp,
        actor -> Text,
        kind -> Text,
        node -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    /// The candidates of open, unassigned tasks: what a person may claim, by `kind` and `name`.
    wf_inbox (kind, name, task_id) {
        kind -> Text,
        name -> Text,
        task_id -> Text,
    }
}

diesel::joinable!(wf_tasks -> wf_instances (instance_id));
diesel::joinable!(wf_inbox -> wf_tasks (task_id));
diesel::joinable!(wf_task_candidates -> wf_tasks (task_id));
diesel::allow_tables_to_appear_in_same_query!(
    wf_definitions,
    wf_instances,
    wf_tasks,
    wf_task_candidates,
    wf_inbox,
    wf_decisions,
    wf_timers,
    wf_subscriptions,
    wf_history,
    wf_ci_owners,
);

diesel::table! {
    /// CI owners, from `control.ci.changed`.
    wf_ci_owners (ci_id) {
        ci_id -> Text,
        owner -> Text,
        revision -> BigInt,
    }
}
