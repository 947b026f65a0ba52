//! Service requests (ISO/IEC 20000-1 8.6.2): the lifecycle of an item ordered from the catalogue.
//!
//! | state          | actions                                                      |
//! |----------------|--------------------------------------------------------------|
//! | submitted      | approve, reject, cancel (the item needs approval)            |
//! | submitted      | start, cancel (it does not)                                  |
//! | approved       | start, cancel                                                |
//! | in_fulfilment  | fulfil, cancel                                               |
//! | fulfilled      | close                                                        |
//! | closed         | —                                                            |
//! | rejected       | —                                                            |
//! | cancelled      | —                                                            |

use serde::{Deserialize, Serialize};

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Ordered.
    Submitted,
    /// Approved, not yet being fulfilled.
    Approved,
    /// Being fulfilled.
    InFulfilment,
    /// Delivered.
    Fulfilled,
    /// Delivery confirmed; final.
    Closed,
    /// Not approved; final.
    Rejected,
    /// Withdrawn; final.
    Cancelled,
}

/// What may be done to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestAction {
    /// Approve it.
    Approve,
    /// Reject it.
    Reject,
    /// Start the fulfilment.
    Start,
    /// Record it delivered.
    Fulfil,
    /// Confirm the delivery.
    Close,
    /// Withdraw it.
    Cancel,
}

const STATES: [RequestState; 7] = [
    RequestState::Submitted,
    RequestState::Approved,
    RequestState::InFulfilment,
    RequestState::Fulfilled,
    RequestState::Closed,
    RequestState::Rejected,
    RequestState::Cancelled,
];

const ACTIONS: [RequestAction; 6] = [
    RequestAction::Approve,
    RequestAction::Reject,
    RequestAction::Start,
    RequestAction::Fulfil,
    RequestAction::Close,
    RequestAction::Cancel,
];

impl RequestAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Start => "start",
            Self::Fulfil => "fulfil",
            Self::Close => "close",
            Self::Cancel => "cancel",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        ACTIONS.into_iter().find(|a| a.as_str() == value)
    }

    /// The event it causes (`resolution.request.<event>`).
    pub fn event(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Start => "fulfilment_started",
            Self::Fulfil => "fulfilled",
            Self::Close => "closed",
            Self::Cancel => "cancelled",
        }
    }

    /// The state it leads to.
    pub fn target(self) -> RequestState {
        match self {
            Self::Approve => RequestState::Approved,
            Self::Reject => RequestState::Rejected,
            Self::Start => RequestState::InFulfilment,
            Self::Fulfil => RequestState::Fulfilled,
            Self::Close => RequestState::Closed,
            Self::Cancel => RequestState::Cancelled,
        }
    }

    /// Whether a request whose item names a fulfilment workflow takes it from that workflow
    /// only (approval and fulfilment are the workflow's tasks).
    pub fn by_workflow(self) -> bool {
        matches!(
            self,
            Self::Approve | Self::Reject | Self::Start | Self::Fulfil
        )
    }
}

impl RequestState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::InFulfilment => "in_fulfilment",
            Self::Fulfilled => "fulfilled",
            Self::Closed => "closed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        STATES.into_iter().find(|s| s.as_str() == value)
    }

    /// The actions this state allows, for an item that does or does not need approval.
    pub fn allowed(self, needs_approval: bool) -> &'static [RequestAction] {
        use RequestAction::*;
        match self {
            Self::Submitted if needs_approval => &[Approve, Reject, Cancel],
            Self::Submitted | Self::Approved => &[Start, Cancel],
            Self::InFulfilment => &[Fulfil, Cancel],
            Self::Fulfilled => &[Close],
            Self::Closed | Self::Rejected | Self::Cancelled => &[],
        }
    }

    /// The state after `action`, or `None` when this state does not allow it.
    pub fn after(self, action: RequestAction, needs_approval: bool) -> Option<Self> {
        if !self.allowed(needs_approval).contains(&action) {
            return None;
        }
        Some(action.target())
    }
}

#[cfg(test)]
mod tests {
    use super::RequestAction::*;
    use super::RequestState::*;
    use super::*;

    #[test]
    fn an_item_needing_approval_is_approved_before_fulfilment() {
        let mut state = Submitted;
        for (action, next) in [
            (Approve, Approved),
            (Start, InFulfilment),
            (Fulfil, Fulfilled),
            (Close, Closed),
        ] {
            state = state.after(action, true).unwrap();
            assert_eq!(state, next);
        }
        assert_eq!(Submitted.after(Start, true), None, "approval comes first");
        assert_eq!(Submitted.after(Reject, true), Some(Rejected));
    }

    #[test]
    fn an_item_without_approval_starts_at_once_and_cannot_be_approved() {
        assert_eq!(Submitted.after(Start, false), Some(InFulfilment));
        assert_eq!(Submitted.after(Approve, false), None);
        assert_eq!(Submitted.after(Reject, false), None);
    }

    #[test]
    fn final_states_allow_nothing_and_a_delivery_cannot_be_withdrawn() {
        for state in [Closed, Rejected, Cancelled] {
            for needs in [true, false] {
                assert!(state.allowed(needs).is_empty(), "{state:?}");
            }
        }
        assert_eq!(Fulfilled.after(Cancel, false), None);
        for state in [Submitted, Approved, InFulfilment] {
            assert_eq!(state.after(Cancel, true), Some(Cancelled));
        }
    }

    #[test]
    fn wire_names_round_trip() {
        for state in STATES {
            assert_eq!(RequestState::parse(state.as_str()), Some(state));
        }
        for action in ACTIONS {
            assert_eq!(RequestAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(RequestState::parse("done"), None);
    }
}
