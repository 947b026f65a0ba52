//! The service-level service's routes, in one table, and its OpenAPI document.

pub mod agreements;
pub mod catalogue;
pub mod clocks;
pub mod operations;
pub mod reports;

#[cfg(test)]
mod tests;

use meridian_chassis::auth::Role;
pub(crate) use meridian_chassis::checks::{checked, slug, text};
use utoipa::OpenApi;

/// Keeps the catalogue, the agreements and their calendars, and investigates breaches.
#[derive(Debug)]
pub struct ServiceLevelManager;
impl Role for ServiceLevelManager {
    const ANY_OF: &'static [&'static str] = &["service-level-manager"];
}

meridian_chassis::routes! {
    "/v1/services" => { get: catalogue::list_services, post: catalogue::create_service },
    "/v1/services/{id}" => { get: catalogue::get_service, put: catalogue::put_service },
    "/v1/calendars" => { get: agreements::list_calendars },
    "/v1/calendars/{id}" => { get: agreements::get_calendar, put: agreements::put_calendar },
    "/v1/agreements" => { get: agreements::list_agreements, post: agreements::create_agreement },
    "/v1/agreements/{id}" => { get: agreements::get_agreement, put: agreements::put_agreement },
    "/v1/sla-clocks" => { get: clocks::list_clocks },
    "/v1/breaches" => { get: clocks::list_breaches },
    "/v1/breaches/{id}/investigation" => { put: clocks::investigate_breach },
    "/v1/services/{id}/availability-target" => { put: operations::put_target },
    "/v1/services/{id}/availability" => { get: operations::get_availability },
    "/v1/outages" => { post: operations::create_outage },
    "/v1/outages/{id}" => { put: operations::put_outage },
    "/v1/continuity-plans" => { get: operations::list_plans, post: operations::create_plan },
    "/v1/continuity-plans/{id}/tests" => { post: operations::test_plan },
    "/v1/continuity-plans/{id}/invocations" => { post: operations::invoke_plan },
    "/v1/capacity-plans" => { post: operations::create_capacity },
    "/v1/measurements" => { post: operations::post_measurements },
    "/v1/measurements/prometheus" => { post: operations::post_prometheus },
    "/v1/demand-forecasts" => { put: operations::put_forecast },
    "/v1/budgets/{service}/{period}" => { get: operations::get_budget, put: operations::put_budget },
    "/v1/costs" => { post: operations::post_cost },
    "/v1/reports/services/{id}" => { get: reports::service_report },
}

/// The service-level service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Meridian service level", description = "The service catalogue (8.2.4), service level management (8.3.3), service reporting (9.1)"),
    paths(
        catalogue::list_services, catalogue::create_service, catalogue::get_service, catalogue::put_service,
        agreements::list_calendars, agreements::get_calendar, agreements::put_calendar,
        agreements::list_agreements, agreements::create_agreement, agreements::get_agreement, agreements::put_agreement,
        clocks::list_clocks, clocks::list_breaches, clocks::investigate_breach,
        operations::put_target, operations::get_availability, operations::create_outage, operations::put_outage,
        operations::list_plans, operations::create_plan, operations::test_plan, operations::invoke_plan,
        operations::create_capacity, operations::post_measurements, operations::post_prometheus,
        operations::put_forecast, operations::get_budget, operations::put_budget, operations::post_cost,
        reports::service_report,
    ),
    tags(
        (name = "catalogue", description = "The service catalogue"),
        (name = "service-levels", description = "SLAs, OLAs, calendars, clocks and breaches"),
        (name = "availability", description = "Availability targets and outages (8.7.1)"),
        (name = "continuity", description = "Continuity plans, tests and invocations (8.7.2)"),
        (name = "capacity", description = "Capacity plans, measurements, demand forecasts (8.4.1, 8.4.2)"),
        (name = "budgeting", description = "Budgets and costs (8.4.3)"),
        (name = "reporting", description = "Service reports (9.1, 9.4)"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
