//! The one exhaustive map from the service's errors to problems.

use meridian_chassis::Problem;
use meridian_chassis::problem::{InvalidParam, codes};

use crate::engine::EngineError;
use crate::store::instances::StepError;

/// Maps a refused step to its problem.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn problem(error: StepError) -> Problem {
    match error {
        StepError::NotFound => Problem::new(codes::WORKFLOW_INSTANCE_NOT_FOUND),
        StepError::Db(error) => Problem::from(error),
        StepError::Unavailable(reason) => {
            Problem::from(meridian_chassis::db::DbError::Unavailable(reason))
        }
        StepError::Engine(error) => {
            let detail = error.to_string();
            match error {
                EngineError::NotRunning(_) => {
                    Problem::new(codes::WORKFLOW_INSTANCE_NOT_RUNNING).detail(detail)
                }
                EngineError::NoTask(_) => Problem::new(codes::TASK_CLOSED).detail(detail),
                EngineError::Forbidden(_) => Problem::new(codes::TASK_NOT_ALLOWED).detail(detail),
                EngineError::Segregation(_) => {
                    Problem::new(codes::SEGREGATION_OF_DUTIES).detail(detail)
                }
                EngineError::Invalid { field, reason } => {
                    Problem::invalid(codes::INVALID_BODY, vec![InvalidParam::new(field, reason)])
                }
                EngineError::Nothing(_) => {
                    Problem::new(codes::WORKFLOW_NOTHING_TO_RETRY).detail(detail)
                }
            }
        }
    }
}

impl From<StepError> for Problem {
    fn from(error: StepError) -> Self {
        problem(error)
    }
}
