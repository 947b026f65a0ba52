//! The service-level service's routes, in one table, and its OpenAPI document.

pub mod agreements;
pub mod catalogue;
pub mod clocks;

#[cfg(test)]
mod tests;

use meridian_chassis::Problem;
use meridian_chassis::auth::Role;
use meridian_chassis::problem::InvalidParam;
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
    ),
    tags(
        (name = "catalogue", description = "The service catalogue"),
        (name = "service-levels", description = "SLAs, OLAs, calendars, clocks and breaches"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// A short id: 1 to 50 of `a-z`, `0-9`, `-`.
pub(crate) fn slug(name: &str, value: &str, params: &mut Vec<InvalidParam>) {
    let ok = !value.is_empty()
        && value.len() <= 50
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        params.push(InvalidParam::new(name, "must be 1 to 50 of a-z, 0-9 and -"));
    }
}

/// A text of 1 to `max` characters (or 0 to `max` when not `required`).
pub(crate) fn text(
    name: &str,
    value: &str,
    max: usize,
    required: bool,
    params: &mut Vec<InvalidParam>,
) {
    let n = value.chars().count();
    if (required && value.trim().is_empty()) || n > max {
        let min = usize::from(required);
        params.push(InvalidParam::new(
            name,
            format!("must be {min} to {max} characters"),
        ));
    }
}

/// The problem of `params`, if any.
pub(crate) fn checked(params: Vec<InvalidParam>) -> Result<(), Problem> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid(
            meridian_chassis::problem::codes::INVALID_BODY,
            params,
        ))
    }
}
