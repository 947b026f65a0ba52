//! Priority from impact and urgency (ISO/IEC 20000-1 8.6.1: incidents are prioritised by impact
//! and urgency). The matrix is configuration; the rule that reads it lives here.

use serde::{Deserialize, Serialize};

/// Impact or urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Wide or severe.
    High,
    /// Moderate.
    Medium,
    /// Narrow or slight.
    Low,
}

impl Level {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "high" => Some(Self::High),
            "medium" => Some(Self::Medium),
            "low" => Some(Self::Low),
            _ => None,
        }
    }
}

/// A priority from 1 (most urgent) to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Priority(u8);

impl Priority {
    /// Parses 1..=5.
    pub fn new(value: i64) -> Option<Self> {
        (1..=5)
            .contains(&value)
            .then(|| Self(u8::try_from(value).unwrap_or(5)))
    }

    /// The number, 1..=5.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        Self::new(value).ok_or_else(|| serde::de::Error::custom("must be between 1 and 5"))
    }
}

/// One row of the matrix: the priority for each urgency at one impact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// Priority at high urgency.
    pub high: Priority,
    /// Priority at medium urgency.
    pub medium: Priority,
    /// Priority at low urgency.
    pub low: Priority,
}

/// The impact × urgency matrix: rows are impact, columns urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityMatrix {
    /// High impact.
    pub high: Row,
    /// Medium impact.
    pub medium: Row,
    /// Low impact.
    pub low: Row,
}

impl PriorityMatrix {
    /// The ITIL matrix, the shipped default: high × high = 1 down to low × low = 5.
    pub fn itil() -> Self {
        let p = |n: u8| Priority(n);
        let row = |high, medium, low| Row {
            high: p(high),
            medium: p(medium),
            low: p(low),
        };
        Self {
            high: row(1, 2, 3),
            medium: row(2, 3, 4),
            low: row(3, 4, 5),
        }
    }

    /// The priority of an incident of this impact and urgency.
    pub fn priority(&self, impact: Level, urgency: Level) -> Priority {
        let row = match impact {
            Level::High => self.high,
            Level::Medium => self.medium,
            Level::Low => self.low,
        };
        match urgency {
            Level::High => row.high,
            Level::Medium => row.medium,
            Level::Low => row.low,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i64) -> Priority {
        Priority::new(n).unwrap()
    }

    fn itil() -> PriorityMatrix {
        PriorityMatrix::itil()
    }

    #[test]
    fn every_cell_of_the_default_matrix_gives_its_priority() {
        use Level::{High, Low, Medium};
        let matrix = itil();
        let expected = [
            (High, High, 1),
            (High, Medium, 2),
            (High, Low, 3),
            (Medium, High, 2),
            (Medium, Medium, 3),
            (Medium, Low, 4),
            (Low, High, 3),
            (Low, Medium, 4),
            (Low, Low, 5),
        ];
        for (impact, urgency, priority) in expected {
            assert_eq!(
                matrix.priority(impact, urgency),
                p(priority),
                "{impact:?} × {urgency:?}"
            );
        }
    }

    #[test]
    fn a_configured_matrix_is_followed() {
        let mut matrix = itil();
        matrix.low.low = p(4);
        assert_eq!(matrix.priority(Level::Low, Level::Low), p(4));
    }

    #[test]
    fn priorities_outside_one_to_five_are_refused() {
        assert!(Priority::new(0).is_none());
        assert!(Priority::new(6).is_none());
        assert!(serde_json::from_str::<Priority>("7").is_err());
        assert_eq!(serde_json::from_str::<Priority>("2").unwrap(), p(2));
    }
}
