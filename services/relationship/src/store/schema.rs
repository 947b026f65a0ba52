//! The relationship service's tables (diesel), as the migrations make them.

diesel::table! {
    rel_counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    rel_services (id) {
        id -> Text,
        name -> Text,
        owner -> Text,
        status -> Text,
        revision -> BigInt,
    }
}

diesel::table! {
    rel_customers (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        account_manager -> Text,
        services -> Text,
        review_interval_days -> Integer,
        survey_interval_days -> Nullable<Integer>,
        notes -> Text,
        last_survey_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    rel_parties (id) {
        id -> Text,
        customer_id -> Nullable<Text>,
        kind -> Text,
        name -> Text,
        email -> Text,
        user_id -> Text,
        requirements -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    rel_service_reviews (id) {
        id -> Text,
        customer_id -> Text,
        state -> Text,
        scheduled_for -> Timestamp,
        period_from -> Date,
        period_to -> Date,
        agenda -> Text,
        performance -> Text,
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
    rel_actions (id) {
        id -> Text,
        source_kind -> Text,
        source_id -> Text,
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
    rel_complaints (id) {
        id -> Text,
        number -> Text,
        customer_id -> Text,
        service -> Nullable<Text>,
        raised_by -> Text,
        summary -> Text,
        description -> Text,
        state -> Text,
        owner -> Nullable<Text>,
        escalation_level -> Integer,
        due_at -> Timestamp,
        investigation -> Text,
        action_taken -> Text,
        resolution -> Text,
        recorded_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    rel_complaint_history (id) {
        id -> Text,
        complaint_id -> Text,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        detail -> Text,
    }
}

diesel::table! {
    rel_surveys (id) {
        id -> Text,
        kind -> Text,
        ticket_id -> Nullable<Text>,
        ticket_number -> Text,
        service -> Text,
        customer -> Text,
        recipient -> Text,
        sent_at -> Timestamp,
        expires_at -> Timestamp,
        responded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    rel_responses (id) {
        id -> Text,
        survey_id -> Text,
        score -> Integer,
        comment -> Text,
        service -> Text,
        customer -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    rel_suppliers (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        customer_id -> Nullable<Text>,
        manager -> Text,
        contact_email -> Text,
        operates -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    rel_contracts (id) {
        id -> Text,
        number -> Text,
        supplier_id -> Text,
        kind -> Text,
        title -> Text,
        scope -> Text,
        services -> Text,
        targets -> Text,
        roles -> Text,
        interfaces -> Text,
        starts_on -> Date,
        ends_on -> Nullable<Date>,
        notice_days -> Integer,
        value -> Nullable<Double>,
        currency -> Text,
        owner -> Text,
        review_interval_days -> Integer,
        next_review_due -> Date,
        state -> Text,
        expiry_notified -> Bool,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    rel_measurements (id) {
        id -> Text,
        contract_id -> Text,
        metric -> Text,
        value -> Double,
        period_from -> Date,
        period_to -> Date,
        met -> Bool,
        notes -> Text,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    rel_disputes (id) {
        id -> Text,
        number -> Text,
        contract_id -> Text,
        supplier_id -> Text,
        summary -> Text,
        details -> Text,
        state -> Text,
        raised_by -> Text,
        raised_at -> Timestamp,
        resolution -> Text,
        resolved_by -> Nullable<Text>,
        resolved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    rel_supplier_reviews (id) {
        id -> Text,
        supplier_id -> Text,
        contract_id -> Text,
        state -> Text,
        period_from -> Date,
        period_to -> Date,
        scorecard -> Text,
        instance_id -> Nullable<Text>,
        outcome -> Text,
        ratings -> Text,
        assessment -> Text,
        signed_off_by -> Text,
        started_by -> Text,
        started_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    rel_counters,
    rel_services,
    rel_customers,
    rel_parties,
    rel_service_reviews,
    rel_actions,
    rel_complaints,
    rel_complaint_history,
    rel_surveys,
    rel_responses,
    rel_suppliers,
    rel_contracts,
    rel_measurements,
    rel_disputes,
    rel_supplier_reviews,
);
