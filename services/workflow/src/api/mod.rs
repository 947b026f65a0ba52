//! The workflow service's routes, in one table, and its OpenAPI document.

pub mod definitions;
pub mod error;
pub mod instances;
pub mod tasks;

#[cfg(test)]
mod tests;

use meridian_chassis::auth::Role;
use utoipa::OpenApi;

/// Deploys definitions, cancels and retries instances, sees everyone's tasks.
#[derive(Debug)]
pub struct WorkflowAdmin;
impl Role for WorkflowAdmin {
    const ANY_OF: &'static [&'static str] = &["workflow-admin"];
}

meridian_chassis::routes! {
    "/v1/definitions" => { get: definitions::list_definitions, post: definitions::deploy_definition },
    "/v1/definitions/{id}/{version}" => { get: definitions::get_definition },
    "/v1/instances" => { post: instances::start_instance },
    "/v1/instances/{id}" => { get: instances::get_instance },
    "/v1/instances/{id}/cancel" => { post: instances::cancel_instance },
    "/v1/instances/{id}/retry" => { post: instances::retry_instance },
    "/v1/workflow-incidents" => { get: instances::list_incidents },
    "/v1/tasks" => { get: tasks::list_tasks },
    "/v1/tasks/{id}" => { get: tasks::get_task },
    "/v1/tasks/{id}/claim" => { post: tasks::claim_task },
    "/v1/tasks/{id}/complete" => { post: tasks::complete_task },
    "/v1/tasks/{id}/delegate" => { post: tasks::delegate_task },
}

/// The workflow service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Meridian workflow", description = "Approval workflows: definitions, instances, human tasks"),
    paths(
        definitions::list_definitions, definitions::deploy_definition, definitions::get_definition,
        instances::start_instance, instances::get_instance, instances::cancel_instance,
        instances::retry_instance, instances::list_incidents,
        tasks::list_tasks, tasks::get_task, tasks::claim_task, tasks::complete_task,
        tasks::delegate_task,
    ),
    tags(
        (name = "definitions", description = "Workflow definitions and their versions"),
        (name = "instances", description = "Running workflows"),
        (name = "tasks", description = "Human tasks"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) use meridian_chassis::telemetry::trace_id_of as correlation;

pub(crate) use meridian_chassis::clock::utc;
