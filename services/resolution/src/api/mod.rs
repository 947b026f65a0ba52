//! The resolution service's routes, in one table, and its OpenAPI document.

pub mod error;
pub mod incidents;
pub mod intake;
pub mod problems;
pub mod requests;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use meridian_chassis::http::BearerAuth;
use utoipa::OpenApi;

meridian_chassis::routes! {
    "/v1/incidents" => { get: incidents::list_incidents, post: incidents::create_incident },
    "/v1/incidents/{id}" => { get: incidents::get_incident, patch: incidents::update_incident },
    "/v1/incidents/{id}/assign" => { post: incidents::assign_incident },
    "/v1/incidents/{id}/start" => { post: incidents::start_incident },
    "/v1/incidents/{id}/pend" => { post: incidents::pend_incident },
    "/v1/incidents/{id}/resume" => { post: incidents::resume_incident },
    "/v1/incidents/{id}/resolve" => { post: incidents::resolve_incident },
    "/v1/incidents/{id}/close" => { post: incidents::close_incident },
    "/v1/incidents/{id}/reopen" => { post: incidents::reopen_incident },
    "/v1/incidents/{id}/cancel" => { post: incidents::cancel_incident },
    "/v1/incidents/{id}/escalate" => { post: incidents::escalate_incident },
    "/v1/incidents/{id}/priority" => { post: incidents::override_priority },
    "/v1/incidents/{id}/major" => { post: incidents::declare_major_incident },
    "/v1/incidents/{id}/notes" => { post: incidents::add_note },
    "/v1/intake/alertmanager" => { post: intake::alertmanager },
    "/v1/intake/events" => { post: intake::events },
    "/v1/problems" => { get: problems::list_problems, post: problems::create_problem },
    "/v1/problems/proposals" => { get: problems::proposals },
    "/v1/problems/{id}" => { get: problems::get_problem },
    "/v1/problems/{id}/investigate" => { post: problems::investigate_problem },
    "/v1/problems/{id}/known-error" => { post: problems::record_known_error },
    "/v1/problems/{id}/resolve" => { post: problems::resolve_problem },
    "/v1/problems/{id}/close" => { post: problems::close_problem },
    "/v1/problems/{id}/reopen" => { post: problems::reopen_problem },
    "/v1/problems/{id}/cancel" => { post: problems::cancel_problem },
    "/v1/problems/{id}/notes" => { post: problems::add_problem_note },
    "/v1/problems/{id}/incidents" => { post: problems::link_problem_incident },
    "/v1/problems/{id}/change" => { post: problems::request_change },
    "/v1/known-errors" => { get: problems::search_known_errors },
    "/v1/request-items" => { get: requests::list_items },
    "/v1/requests" => { get: requests::list_requests, post: requests::create_request },
    "/v1/requests/{id}" => { get: requests::get_request },
    "/v1/requests/{id}/{action}" => { post: requests::act_on_request },
}

/// The resolution service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Meridian resolution", description = "Incidents, service requests, problems and known errors (ISO/IEC 20000-1 8.6)"),
    paths(
        incidents::list_incidents, incidents::create_incident, incidents::get_incident,
        incidents::update_incident, incidents::assign_incident, incidents::start_incident,
        incidents::pend_incident, incidents::resume_incident, incidents::resolve_incident,
        incidents::close_incident, incidents::reopen_incident, incidents::cancel_incident,
        incidents::escalate_incident, incidents::override_priority,
        incidents::declare_major_incident, incidents::add_note,
        intake::alertmanager, intake::events,
        problems::list_problems, problems::create_problem, problems::proposals, problems::get_problem,
        problems::investigate_problem, problems::record_known_error, problems::resolve_problem,
        problems::close_problem, problems::reopen_problem, problems::cancel_problem,
        problems::add_problem_note, problems::link_problem_incident, problems::search_known_errors,
        problems::request_change,
        requests::list_items, requests::list_requests, requests::create_request,
        requests::get_request, requests::act_on_request,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "incidents", description = "Incident management"),
        (name = "intake", description = "Alerts from monitoring into incidents"),
        (name = "problems", description = "Problems and known errors (8.6.3)"),
        (name = "requests", description = "Service requests (8.6.2)"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
