//! The control service's routes, in one table, and its OpenAPI document.

pub mod assets;
pub mod audits;
pub mod changes;
pub mod cis;
pub mod gate;
pub mod releases;

#[cfg(test)]
mod tests;

use meridian_chassis::auth::Role;
use utoipa::OpenApi;

/// A required text field: 1 to `max` characters, or a 400 naming it.
///
/// # Errors
/// The problem naming `name`.
pub(crate) fn required(
    name: &str,
    value: &str,
    max: usize,
) -> Result<(), meridian_chassis::Problem> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(meridian_chassis::Problem::field(
            name,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(())
}

/// Records and changes CIs and their relations.
#[derive(Debug)]
pub struct ConfigurationManager;
impl Role for ConfigurationManager {
    const ANY_OF: &'static [&'static str] = &["configuration-manager"];
}

meridian_chassis::routes! {
    "/v1/ci-types" => { get: cis::list_types },
    "/v1/cis" => { get: cis::list_cis, post: cis::create_ci },
    "/v1/cis/import" => { post: cis::import_cis },
    "/v1/cis/export" => { get: cis::export_cis },
    "/v1/cis/{id}" => { get: cis::get_ci, patch: cis::update_ci },
    "/v1/cis/{id}/relations" => { post: cis::relate_ci },
    "/v1/cis/{id}/impact" => { get: cis::impact },
    "/v1/relations/{id}" => { delete: cis::delete_relation },
    "/v1/change-templates" => { get: changes::list_templates },
    "/v1/changes" => { get: changes::list_changes, post: changes::create_change },
    "/v1/changes/calendar" => { get: changes::calendar },
    "/v1/changes/trends" => { get: changes::trends },
    "/v1/changes/{id}" => { get: changes::get_change },
    "/v1/changes/{id}/submit" => { post: changes::submit_change },
    "/v1/changes/{id}/start" => { post: changes::start_change },
    "/v1/changes/{id}/complete" => { post: changes::complete_change },
    "/v1/changes/{id}/review" => { post: changes::review_change },
    "/v1/changes/{id}/close" => { post: changes::close_change },
    "/v1/changes/{id}/cancel" => { post: changes::cancel_change },
    "/v1/changes/{id}/design" => { put: changes::record_design },
    "/v1/changes/{id}/acceptance" => { post: changes::record_acceptance },
    "/v1/releases" => { post: releases::create_release },
    "/v1/releases/{id}" => { get: releases::get_release },
    "/v1/releases/{id}/test-results" => { post: releases::record_test_results },
    "/v1/releases/{id}/deployments" => { post: releases::deploy_release },
    "/v1/baselines" => { post: releases::take_baseline },
    "/v1/baselines/{id}" => { get: releases::get_baseline },
    "/v1/assets" => { get: assets::list_assets, post: assets::create_asset },
    "/v1/config-audits" => { post: audits::run_audit },
    "/v1/config-audits/{id}" => { get: audits::get_audit },
    "/v1/config-audits/{id}/discrepancies/{index}/resolve" => { post: audits::resolve_discrepancy },
    "/v1/change-gate/decisions" => { get: gate::list_decisions },
}

/// The control service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Meridian control", description = "Configuration management (8.2.6) and change management (8.5.1)"),
    paths(
        cis::list_types, cis::list_cis, cis::create_ci, cis::get_ci, cis::update_ci,
        cis::relate_ci, cis::impact, cis::delete_relation, cis::import_cis, cis::export_cis,
        changes::create_change, changes::list_changes, changes::get_change, changes::submit_change,
        changes::start_change, changes::complete_change, changes::review_change,
        changes::close_change, changes::cancel_change, changes::calendar, changes::trends,
        changes::record_design, changes::record_acceptance, changes::list_templates,
        releases::create_release, releases::get_release, releases::record_test_results,
        releases::deploy_release, releases::get_baseline, releases::take_baseline,
        audits::run_audit, audits::get_audit, audits::resolve_discrepancy,
        assets::create_asset, assets::list_assets, gate::list_decisions,
    ),
    tags(
        (name = "cmdb", description = "Configuration items, relations, impact analysis"),
        (name = "changes", description = "Change management; approval by the workflow engine"),
        (name = "releases", description = "Releases, deployments and baselines"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
