//! The relationship service's routes, in one table, its OpenAPI document, and the checks its
//! handlers share.

pub mod complaints;
pub mod customers;
pub mod satisfaction;
pub mod suppliers;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use meridian_chassis::auth::Role;
pub(crate) use meridian_chassis::checks::{checked, one_of, one_text, page_limit, slug, text};
use meridian_chassis::http::BearerAuth;
use meridian_chassis::problem::InvalidParam;
use utoipa::OpenApi;

/// Looks after customers, their reviews, complaints and surveys.
#[derive(Debug)]
pub struct RelationshipManager;
impl Role for RelationshipManager {
    const ANY_OF: &'static [&'static str] = &["relationship-manager"];
}

/// Records complaints: the service desk or the relationship manager.
#[derive(Debug)]
pub struct ComplaintTaker;
impl Role for ComplaintTaker {
    const ANY_OF: &'static [&'static str] = &["agent", "relationship-manager"];
}

/// Looks after suppliers, contracts, measurements and disputes.
#[derive(Debug)]
pub struct SupplierManager;
impl Role for SupplierManager {
    const ANY_OF: &'static [&'static str] = &["supplier-manager"];
}

meridian_chassis::routes! {
    "/v1/customers" => { get: customers::list_customers, post: customers::create_customer },
    "/v1/customers/{id}" => { get: customers::get_customer, put: customers::put_customer },
    "/v1/customers/{id}/surveys" => { post: satisfaction::send_periodic },
    "/v1/parties" => { get: customers::list_parties, post: customers::create_party },
    "/v1/parties/{id}" => { put: customers::put_party },
    "/v1/service-reviews" => { get: customers::list_reviews, post: customers::plan_review },
    "/v1/service-reviews/{id}" => { get: customers::get_review },
    "/v1/service-reviews/{id}/performance" => { post: customers::refresh_performance },
    "/v1/service-reviews/{id}/hold" => { post: customers::hold_review },
    "/v1/follow-up-actions" => { get: customers::list_actions },
    "/v1/follow-up-actions/{id}/close" => { post: customers::close_action },
    "/v1/complaints" => { get: complaints::list_complaints, post: complaints::create_complaint },
    "/v1/complaints/{id}" => { get: complaints::get_complaint },
    "/v1/complaints/{id}/{action}" => { post: complaints::act_on_complaint },
    "/v1/surveys/respond/{token}" => { get: satisfaction::survey_page, post: satisfaction::respond },
    "/v1/satisfaction" => { get: satisfaction::scores },
    "/v1/suppliers" => { get: suppliers::list_suppliers, post: suppliers::create_supplier },
    "/v1/suppliers/{id}" => { get: suppliers::get_supplier, put: suppliers::put_supplier },
    "/v1/contracts" => { get: suppliers::list_contracts, post: suppliers::create_contract },
    "/v1/contracts/{id}" => { get: suppliers::get_contract, put: suppliers::put_contract },
    "/v1/contracts/{id}/renew" => { post: suppliers::renew_contract },
    "/v1/contracts/{id}/terminate" => { post: suppliers::terminate_contract },
    "/v1/contracts/{id}/measurements" => { get: suppliers::list_measurements, post: suppliers::add_measurement },
    "/v1/contracts/{id}/reviews" => { post: suppliers::start_review },
    "/v1/disputes" => { get: suppliers::list_disputes, post: suppliers::raise_dispute },
    "/v1/disputes/{id}/resolve" => { post: suppliers::resolve_dispute },
    "/v1/supplier-reviews" => { get: suppliers::list_reviews },
    "/v1/supplier-reviews/{id}" => { get: suppliers::get_review },
}

/// The relationship service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Meridian relationship", description = "Business relationship management (8.3.2) and supplier management (8.3.4, 8.2.3)"),
    paths(
        customers::list_customers, customers::create_customer, customers::get_customer, customers::put_customer,
        customers::list_parties, customers::create_party, customers::put_party,
        customers::list_reviews, customers::plan_review, customers::get_review,
        customers::refresh_performance, customers::hold_review,
        customers::list_actions, customers::close_action,
        complaints::list_complaints, complaints::create_complaint, complaints::get_complaint,
        complaints::act_on_complaint,
        satisfaction::send_periodic, satisfaction::survey_page, satisfaction::respond, satisfaction::scores,
        suppliers::list_suppliers, suppliers::create_supplier, suppliers::get_supplier, suppliers::put_supplier,
        suppliers::list_contracts, suppliers::create_contract, suppliers::get_contract, suppliers::put_contract,
        suppliers::renew_contract, suppliers::terminate_contract,
        suppliers::list_measurements, suppliers::add_measurement, suppliers::start_review,
        suppliers::list_disputes, suppliers::raise_dispute, suppliers::resolve_dispute,
        suppliers::list_reviews, suppliers::get_review,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "customers", description = "Customers, parties, service reviews and their actions (8.3.2)"),
        (name = "complaints", description = "Complaints: recorded, investigated, acted on, closed, escalated (8.3.2)"),
        (name = "satisfaction", description = "Satisfaction surveys and their scores (8.3.2)"),
        (name = "suppliers", description = "Suppliers, contracts, measurements, disputes and reviews (8.3.4, 8.2.3)"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// A whole number of days in `range`.
pub(crate) fn days(
    name: &str,
    value: i32,
    range: std::ops::RangeInclusive<i32>,
    params: &mut Vec<InvalidParam>,
) {
    if !range.contains(&value) {
        params.push(InvalidParam::new(
            name,
            format!("must be {} to {}", range.start(), range.end()),
        ));
    }
}

/// A stored time as UTC.
pub(crate) fn utc(at: chrono::NaiveDateTime) -> DateTime<Utc> {
    meridian_chassis::clock::utc(at)
}
