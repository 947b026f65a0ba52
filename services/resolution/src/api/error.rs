//! The one exhaustive map from the service's errors to problems.

use meridian_chassis::Problem;
use meridian_chassis::problem::codes;

use crate::domain::incident::IncidentError;

/// Maps a refused command to its problem (409s list the actions the state allows).
#[deny(clippy::wildcard_enum_match_arm)]
pub fn problem(error: IncidentError) -> Problem {
    let detail = error.to_string();
    match error {
        IncidentError::NotAllowed { state, .. } => {
            Problem::new(codes::INCIDENT_TRANSITION_NOT_ALLOWED)
                .detail(detail)
                .allowed_actions(
                    state
                        .allowed()
                        .iter()
                        .map(|action| action.as_str().to_owned())
                        .collect(),
                )
        }
        IncidentError::MajorCriteriaNotMet { .. } => {
            Problem::new(codes::MAJOR_INCIDENT_CRITERIA_NOT_MET).detail(detail)
        }
        IncidentError::AlreadyMajor => Problem::new(codes::INCIDENT_ALREADY_MAJOR).detail(detail),
    }
}
