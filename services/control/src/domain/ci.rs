//! Configuration items (ISO/IEC 20000-1 8.2.6) and their relations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::CiType;

macro_rules! vocabulary {
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

vocabulary! {
    /// Where a CI is in its life.
    Status {
        /// Not yet in service.
        Planned = "planned",
        /// Live.
        InService = "in_service",
        /// No longer used (kept for the record).
        Retired = "retired",
    }
}

vocabulary! {
    /// How much depends on a CI.
    Criticality {
        /// Little.
        Low = "low",
        /// Some.
        Medium = "medium",
        /// Much.
        High = "high",
        /// The business stops without it.
        Critical = "critical",
    }
}

vocabulary! {
    /// How one CI relates to another: `source <kind> target`.
    RelationKind {
        /// The source needs the target to work.
        DependsOn = "depends_on",
        /// The source runs on the target (an application on a server).
        RunsOn = "runs_on",
        /// The source is hosted by the target (a database by a cluster).
        HostedBy = "hosted_by",
        /// The source talks to the target over the network.
        ConnectsTo = "connects_to",
        /// The source is part of the target (a workload of a namespace).
        PartOf = "part_of",
    }
}

/// The attributes of a CI, checked against its type's schema.
///
/// # Errors
/// The field at fault (`ci_type` or `attributes.<name>`) and why.
pub fn check_attributes(
    types: &BTreeMap<String, CiType>,
    ci_type: &str,
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), (String, String)> {
    let Some(schema) = types.get(ci_type) else {
        let known: Vec<&str> = types.keys().map(String::as_str).collect();
        return Err((
            "ci_type".to_owned(),
            format!("is not one of {}", known.join(", ")),
        ));
    };
    meridian_chassis::fields::check(&schema.attributes, attributes, "attributes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_name() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(*status));
        }
        for criticality in Criticality::ALL {
            assert_eq!(Criticality::parse(criticality.as_str()), Some(*criticality));
        }
        for kind in RelationKind::ALL {
            assert_eq!(RelationKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(Status::parse("live"), None);
    }
}
