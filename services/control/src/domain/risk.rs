//! The risk of a change, scored and explained factor by factor (ISO/IEC 20000-1 8.5.1.2).

use serde::Serialize;
use utoipa::ToSchema;

use super::ci::Criticality;

/// What the score is computed from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The most critical CI the change touches.
    pub criticality: Option<Criticality>,
    /// CIs affected through impact analysis (upwards), the change's own excluded.
    pub affected: usize,
    /// Business services among them (or touched directly).
    pub services: usize,
    /// Failed changes on the same CIs before.
    pub past_failures: usize,
    /// Whether the window falls inside business hours.
    pub in_business_hours: bool,
}

/// One factor of the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Factor {
    /// What is measured.
    pub factor: String,
    /// What was found.
    pub found: String,
    /// Points added.
    pub points: u32,
}

/// The score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Risk {
    /// The sum of the factors' points.
    pub score: u32,
    /// `low` (under 8), `medium` (under 16) or `high`.
    pub level: String,
    /// Why.
    pub factors: Vec<Factor>,
}

/// Scores a change.
pub fn assess(inputs: &Inputs) -> Risk {
    let criticality = match inputs.criticality {
        None => 0,
        Some(Criticality::Low) => 1,
        Some(Criticality::Medium) => 3,
        Some(Criticality::High) => 6,
        Some(Criticality::Critical) => 10,
    };
    let breadth = match inputs.affected {
        0 => 0,
        1..=5 => 2,
        6..=20 => 4,
        _ => 6,
    };
    let capped = |n: usize, each: u32, cap: u32| {
        u32::try_from(n)
            .unwrap_or(u32::MAX)
            .saturating_mul(each)
            .min(cap)
    };
    let factors = vec![
        Factor {
            factor: "criticality of the CIs".to_owned(),
            found: inputs
                .criticality
                .map_or("no CI".to_owned(), |c| format!("highest {}", c.as_str())),
            points: criticality,
        },
        Factor {
            factor: "breadth of impact".to_owned(),
            found: format!("{} CIs affected", inputs.affected),
            points: breadth,
        },
        Factor {
            factor: "business services affected".to_owned(),
            found: format!("{} services", inputs.services),
            points: capped(inputs.services, 2, 6),
        },
        Factor {
            factor: "past failed changes on the same CIs".to_owned(),
            found: format!("{} failed", inputs.past_failures),
            points: capped(inputs.past_failures, 4, 8),
        },
        Factor {
            factor: "window inside business hours".to_owned(),
            found: if inputs.in_business_hours {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
            points: if inputs.in_business_hours { 4 } else { 0 },
        },
    ];
    let score = factors.iter().map(|f| f.points).sum();
    let level = match score {
        0..8 => "low",
        8..16 => "medium",
        _ => "high",
    };
    Risk {
        score,
        level: level.to_owned(),
        factors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_factor_adds_its_points_and_the_level_follows_the_score() {
        assert_eq!(assess(&Inputs::default()).score, 0);
        assert_eq!(assess(&Inputs::default()).level, "low");
        let risky = assess(&Inputs {
            criticality: Some(Criticality::Critical),
            affected: 30,
            services: 5,
            past_failures: 1,
            in_business_hours: true,
        });
        let points: Vec<u32> = risky.factors.iter().map(|f| f.points).collect();
        assert_eq!(points, [10, 6, 6, 4, 4]);
        assert_eq!((risky.score, risky.level.as_str()), (30, "high"));
        let medium = assess(&Inputs {
            criticality: Some(Criticality::High),
            affected: 3,
            ..Inputs::default()
        });
        assert_eq!((medium.score, medium.level.as_str()), (8, "medium"));
    }
}
