//! Problems and known errors (ISO/IEC 20000-1 8.6.3): the lifecycle, and the rule that a
//! recurrence after a problem was resolved reopens its review.
//!
//! | state               | actions                                             |
//! |---------------------|-----------------------------------------------------|
//! | new                 | investigate, known_error, cancel                    |
//! | under_investigation | known_error, resolve, cancel                        |
//! | known_error         | resolve (a workaround is known; the fix is pending) |
//! | resolved            | close, reopen (a recurrence)                        |
//! | closed              | reopen (a recurrence)                               |
//! | cancelled           | —                                                   |

use serde::{Deserialize, Serialize};

/// Where a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemState {
    /// Recorded.
    New,
    /// Its root cause is being looked for.
    UnderInvestigation,
    /// Root cause and workaround known; a known error.
    KnownError,
    /// Fixed.
    Resolved,
    /// Fixed and confirmed.
    Closed,
    /// Not a problem after all.
    Cancelled,
}

/// What may be done to a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemAction {
    /// Start the investigation.
    Investigate,
    /// Record it as a known error.
    KnownError,
    /// Record the fix.
    Resolve,
    /// Confirm the fix.
    Close,
    /// Reopen the review (the incidents recur).
    Reopen,
    /// Withdraw it.
    Cancel,
}

impl ProblemAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Investigate => "investigate",
            Self::KnownError => "known_error",
            Self::Resolve => "resolve",
            Self::Close => "close",
            Self::Reopen => "reopen",
            Self::Cancel => "cancel",
        }
    }
}

impl ProblemState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::UnderInvestigation => "under_investigation",
            Self::KnownError => "known_error",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::New,
            Self::UnderInvestigation,
            Self::KnownError,
            Self::Resolved,
            Self::Closed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Still being worked (not resolved, closed or cancelled).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::New | Self::UnderInvestigation | Self::KnownError
        )
    }

    /// The actions this state allows.
    pub fn allowed(self) -> &'static [ProblemAction] {
        use ProblemAction::*;
        match self {
            Self::New => &[Investigate, KnownError, Cancel],
            Self::UnderInvestigation => &[KnownError, Resolve, Cancel],
            Self::KnownError => &[Resolve],
            Self::Resolved => &[Close, Reopen],
            Self::Closed => &[Reopen],
            Self::Cancelled => &[],
        }
    }

    /// The state after `action`, or `None` when this state does not allow it.
    pub fn after(self, action: ProblemAction) -> Option<Self> {
        if !self.allowed().contains(&action) {
            return None;
        }
        Some(match action {
            ProblemAction::Investigate | ProblemAction::Reopen => Self::UnderInvestigation,
            ProblemAction::KnownError => Self::KnownError,
            ProblemAction::Resolve => Self::Resolved,
            ProblemAction::Close => Self::Closed,
            ProblemAction::Cancel => Self::Cancelled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_allows_what_its_table_says_and_nothing_else() {
        use ProblemAction::*;
        use ProblemState::*;
        assert_eq!(New.after(Investigate), Some(UnderInvestigation));
        assert_eq!(
            UnderInvestigation.after(ProblemAction::KnownError),
            Some(ProblemState::KnownError)
        );
        assert_eq!(ProblemState::KnownError.after(Resolve), Some(Resolved));
        assert_eq!(Resolved.after(Close), Some(Closed));
        assert_eq!(Closed.after(Reopen), Some(UnderInvestigation));
        assert_eq!(
            New.after(Resolve),
            None,
            "a fix needs an investigation first"
        );
        assert_eq!(ProblemState::KnownError.after(Cancel), None);
        assert_eq!(Cancelled.allowed(), &[] as &[ProblemAction]);
        for s in [
            New,
            UnderInvestigation,
            ProblemState::KnownError,
            Resolved,
            Closed,
            Cancelled,
        ] {
            assert_eq!(ProblemState::parse(s.as_str()), Some(s));
        }
    }
}
