//! The change: its lifecycle (ISO/IEC 20000-1 8.5.1).
//!
//! | state        | actions                                   |
//! |--------------|-------------------------------------------|
//! | draft        | update, submit, cancel                    |
//! | submitted    | assess, approve, reject, cancel (the workflow decides) |
//! | assessed     | approve, reject, cancel                   |
//! | approved     | schedule, cancel                          |
//! | scheduled    | start, cancel                             |
//! | implementing | complete (implemented or failed)          |
//! | implemented  | review                                    |
//! | failed       | review (after the back-out)               |
//! | reviewed     | close                                     |
//! | rejected, closed, cancelled | (none: final)              |
//!
//! Approval is not an API action: submitting publishes `control.change.submitted`, the workflow
//! definition for the category decides, and its outcome comes back over the bus (the schedule
//! command on approval, the instance's completion on rejection).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// From the stored name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

words! {
    /// Where a change stands.
    ChangeState {
        /// Being written.
        Draft = "draft",
        /// Waiting for its decision.
        Submitted = "submitted",
        /// Its risk assessed (by the change manager, in the workflow).
        Assessed = "assessed",
        /// Approved, not yet scheduled.
        Approved = "approved",
        /// Refused.
        Rejected = "rejected",
        /// Approved and in the calendar.
        Scheduled = "scheduled",
        /// Being carried out.
        Implementing = "implementing",
        /// Done as planned.
        Implemented = "implemented",
        /// Failed and backed out.
        Failed = "failed",
        /// Reviewed after implementation.
        Reviewed = "reviewed",
        /// Final.
        Closed = "closed",
        /// Withdrawn.
        Cancelled = "cancelled",
    }
}

words! {
    /// How a change is approved.
    Category {
        /// From a pre-approved template.
        Standard = "standard",
        /// Assessed, then decided by the change manager or the CAB.
        Normal = "normal",
        /// Decided at once by the emergency CAB.
        Emergency = "emergency",
    }
}

words! {
    /// What may be done to a change.
    ChangeAction {
        /// Edit a draft.
        Update = "update",
        /// Ask for approval.
        Submit = "submit",
        /// The risk assessment was done.
        Assess = "assess",
        /// The workflow approved it.
        Approve = "approve",
        /// The workflow rejected it.
        Reject = "reject",
        /// Put it in the calendar.
        Schedule = "schedule",
        /// Begin the implementation.
        Start = "start",
        /// Record the implementation's result.
        Complete = "complete",
        /// Record the post-implementation review.
        Review = "review",
        /// Close it.
        Close = "close",
        /// Withdraw it.
        Cancel = "cancel",
    }
}

impl ChangeState {
    /// The actions this state allows.
    pub fn allowed(self) -> &'static [ChangeAction] {
        use ChangeAction as A;
        match self {
            Self::Draft => &[A::Update, A::Submit, A::Cancel],
            Self::Submitted => &[A::Assess, A::Approve, A::Reject, A::Cancel],
            Self::Assessed => &[A::Approve, A::Reject, A::Cancel],
            Self::Approved => &[A::Schedule, A::Cancel],
            Self::Scheduled => &[A::Start, A::Cancel],
            Self::Implementing => &[A::Complete],
            Self::Implemented | Self::Failed => &[A::Review],
            Self::Reviewed => &[A::Close],
            Self::Rejected | Self::Closed | Self::Cancelled => &[],
        }
    }

    /// The state `action` leads to from here, or `None` when it is not allowed. `Complete`
    /// leads to implemented; a failed implementation is [`ChangeState::Failed`], chosen by the
    /// caller.
    pub fn after(self, action: ChangeAction) -> Option<Self> {
        use ChangeAction as A;
        if !self.allowed().contains(&action) {
            return None;
        }
        Some(match action {
            A::Update => self,
            A::Submit => Self::Submitted,
            A::Assess => Self::Assessed,
            A::Approve => Self::Approved,
            A::Reject => Self::Rejected,
            A::Schedule => Self::Scheduled,
            A::Start => Self::Implementing,
            A::Complete => Self::Implemented,
            A::Review => Self::Reviewed,
            A::Close => Self::Closed,
            A::Cancel => Self::Cancelled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of the module's documentation, written out independently.
    fn expected(state: ChangeState, action: ChangeAction) -> Option<ChangeState> {
        use ChangeAction as A;
        use ChangeState as S;
        match (state, action) {
            (S::Draft, A::Update) => Some(S::Draft),
            (S::Draft, A::Submit) => Some(S::Submitted),
            (S::Submitted, A::Assess) => Some(S::Assessed),
            (S::Submitted | S::Assessed, A::Approve) => Some(S::Approved),
            (S::Submitted | S::Assessed, A::Reject) => Some(S::Rejected),
            (S::Approved, A::Schedule) => Some(S::Scheduled),
            (S::Scheduled, A::Start) => Some(S::Implementing),
            (S::Implementing, A::Complete) => Some(S::Implemented),
            (S::Implemented | S::Failed, A::Review) => Some(S::Reviewed),
            (S::Reviewed, A::Close) => Some(S::Closed),
            (S::Draft | S::Submitted | S::Assessed | S::Approved | S::Scheduled, A::Cancel) => {
                Some(S::Cancelled)
            }
            _ => None,
        }
    }

    #[test]
    fn every_state_and_action_follows_the_table() {
        for state in ChangeState::ALL {
            for action in ChangeAction::ALL {
                assert_eq!(
                    state.after(*action),
                    expected(*state, *action),
                    "{state:?} {action:?}"
                );
            }
            assert_eq!(ChangeState::parse(state.as_str()), Some(*state));
        }
    }
}
