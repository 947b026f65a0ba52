//! The clauses and sub-clauses of ISO/IEC 20000-1:2018 (4 to 10) and what evidences each: the
//! management system's own records, and the events other services publish (kept in the audit
//! ledger). Any clause is also evidenced by an approved document that names it.

/// A kind of the management system's own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Record {
    /// Internal and external issues (4.1).
    Issues,
    /// Interested parties and their requirements (4.2).
    InterestedParties,
    /// A scope version (4.3).
    Scope,
    /// An approved policy (5.2, 8.7.3: by the clauses it names).
    Policy,
    /// A role with holders (5.3).
    Roles,
    /// A risk or opportunity assessed or reviewed (6.1).
    Risks,
    /// An objective, or progress recorded on one (6.2).
    Objectives,
    /// A competence record (7.2).
    Competence,
    /// A document version approved (7.5).
    DocumentApprovals,
    /// An internal audit completed (9.2).
    Audits,
    /// A management review held (9.3, 5.1).
    Reviews,
    /// A nonconformity recorded or closed (10.1).
    Nonconformities,
    /// An improvement (10.2).
    Improvements,
}

impl Record {
    /// Whether the record stands (evidence while recent) rather than happens (evidence when in
    /// the period).
    pub fn standing(self) -> bool {
        matches!(
            self,
            Self::Issues | Self::InterestedParties | Self::Scope | Self::Policy | Self::Roles
        )
    }

    /// Where the records are listed.
    pub fn link(self) -> &'static str {
        match self {
            Self::Issues | Self::InterestedParties => "/v1/context",
            Self::Scope => "/v1/scope/versions",
            Self::Policy | Self::DocumentApprovals => "/v1/documents",
            Self::Roles => "/v1/sms-roles",
            Self::Risks => "/v1/risks",
            Self::Objectives => "/v1/objectives",
            Self::Competence => "/v1/competences",
            Self::Audits => "/v1/audits",
            Self::Reviews => "/v1/management-reviews",
            Self::Nonconformities => "/v1/nonconformities",
            Self::Improvements => "/v1/improvements",
        }
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Issues => "internal and external issues",
            Self::InterestedParties => "interested parties",
            Self::Scope => "scope versions",
            Self::Policy => "approved policies",
            Self::Roles => "roles with holders",
            Self::Risks => "risks assessed or reviewed",
            Self::Objectives => "objectives and progress",
            Self::Competence => "competence records",
            Self::DocumentApprovals => "document versions approved",
            Self::Audits => "internal audits completed",
            Self::Reviews => "management reviews held",
            Self::Nonconformities => "nonconformities",
            Self::Improvements => "improvements",
        }
    }
}

/// A clause and what evidences it.
#[derive(Debug, Clone, Copy)]
pub struct Clause {
    /// `8.5.1.3`.
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The management system's records that evidence it.
    pub records: &'static [Record],
    /// The event types (patterns) that evidence it, from the ledger.
    pub events: &'static [&'static str],
}

use Record as R;

/// Every clause of 4 to 10, in order.
pub const CLAUSES: &[Clause] = &[
    Clause {
        id: "4.1",
        title: "Understanding the organization and its context",
        records: &[R::Issues],
        events: &[],
    },
    Clause {
        id: "4.2",
        title: "Needs and expectations of interested parties",
        records: &[R::InterestedParties],
        events: &[],
    },
    Clause {
        id: "4.3",
        title: "Scope of the service management system",
        records: &[R::Scope],
        events: &[],
    },
    Clause {
        id: "4.4",
        title: "Service management system",
        records: &[R::DocumentApprovals],
        events: &[],
    },
    Clause {
        id: "5.1",
        title: "Leadership and commitment",
        records: &[R::Reviews],
        events: &[],
    },
    Clause {
        id: "5.2",
        title: "Service management policy",
        records: &[R::Policy],
        events: &[],
    },
    Clause {
        id: "5.3",
        title: "Roles, responsibilities and authorities",
        records: &[R::Roles],
        events: &[],
    },
    Clause {
        id: "6.1",
        title: "Actions to address risks and opportunities",
        records: &[R::Risks],
        events: &[],
    },
    Clause {
        id: "6.2",
        title: "Service management objectives",
        records: &[R::Objectives],
        events: &[],
    },
    Clause {
        id: "6.3",
        title: "Plan the service management system",
        records: &[],
        events: &[],
    },
    Clause {
        id: "7.1",
        title: "Resources",
        records: &[],
        events: &[],
    },
    Clause {
        id: "7.2",
        title: "Competence",
        records: &[R::Competence],
        events: &[],
    },
    Clause {
        id: "7.3",
        title: "Awareness",
        records: &[],
        events: &[],
    },
    Clause {
        id: "7.4",
        title: "Communication",
        records: &[],
        events: &["relationship.survey.sent", "workflow.task.created"],
    },
    Clause {
        id: "7.5",
        title: "Documented information",
        records: &[R::DocumentApprovals],
        events: &["governance.document.issued"],
    },
    Clause {
        id: "7.6",
        title: "Knowledge",
        records: &[],
        events: &[
            "resolution.problem.known_error",
            "resolution.problem.workaround_used",
        ],
    },
    Clause {
        id: "8.1",
        title: "Operational planning and control",
        records: &[],
        events: &[],
    },
    Clause {
        id: "8.2.1",
        title: "Service delivery",
        records: &[],
        events: &[
            "resolution.incident.resolved",
            "resolution.request.fulfilled",
        ],
    },
    Clause {
        id: "8.2.2",
        title: "Plan the services",
        records: &[],
        events: &["service_level.service.published"],
    },
    Clause {
        id: "8.2.3",
        title: "Control of parties involved in the service lifecycle",
        records: &[],
        events: &["relationship.supplier.review_completed"],
    },
    Clause {
        id: "8.2.4",
        title: "Service catalogue management",
        records: &[],
        events: &["service_level.service.published"],
    },
    Clause {
        id: "8.2.5",
        title: "Asset management",
        records: &[],
        events: &[],
    },
    Clause {
        id: "8.2.6",
        title: "Configuration management",
        records: &[],
        events: &["control.ci.changed"],
    },
    Clause {
        id: "8.3.1",
        title: "Relationship and agreement: general",
        records: &[],
        events: &["relationship.#"],
    },
    Clause {
        id: "8.3.2",
        title: "Business relationship management",
        records: &[],
        events: &[
            "relationship.satisfaction.recorded",
            "relationship.complaint.*",
            "relationship.survey.sent",
        ],
    },
    Clause {
        id: "8.3.3",
        title: "Service level management",
        records: &[],
        events: &["service_level.sla.*"],
    },
    Clause {
        id: "8.3.4",
        title: "Supplier management",
        records: &[],
        events: &[
            "relationship.supplier.review_completed",
            "relationship.contract.*",
        ],
    },
    Clause {
        id: "8.4.1",
        title: "Budgeting and accounting for services",
        records: &[],
        events: &[],
    },
    Clause {
        id: "8.4.2",
        title: "Demand management",
        records: &[],
        events: &[],
    },
    Clause {
        id: "8.4.3",
        title: "Capacity management",
        records: &[],
        events: &["service_level.capacity.threshold_crossed"],
    },
    Clause {
        id: "8.5.1.1",
        title: "Change management policy",
        records: &[],
        events: &[],
    },
    Clause {
        id: "8.5.1.2",
        title: "Change management initiation",
        records: &[],
        events: &["control.change.submitted", "control.change.raised"],
    },
    Clause {
        id: "8.5.1.3",
        title: "Change management activities",
        records: &[],
        events: &["control.change.state_changed", "control.change.deployed"],
    },
    Clause {
        id: "8.5.2",
        title: "Service design and transition",
        records: &[],
        events: &[],
    },
    Clause {
        id: "8.5.3",
        title: "Release and deployment management",
        records: &[],
        events: &["control.deployment.recorded", "control.deployment.failed"],
    },
    Clause {
        id: "8.6.1",
        title: "Incident management",
        records: &[],
        events: &["resolution.incident.*"],
    },
    Clause {
        id: "8.6.2",
        title: "Service request management",
        records: &[],
        events: &["resolution.request.*"],
    },
    Clause {
        id: "8.6.3",
        title: "Problem management",
        records: &[],
        events: &["resolution.problem.*"],
    },
    Clause {
        id: "8.7.1",
        title: "Service availability management",
        records: &[],
        events: &[],
    },
    Clause {
        id: "8.7.2",
        title: "Service continuity management",
        records: &[],
        events: &[],
    },
    Clause {
        id: "8.7.3",
        title: "Information security management",
        records: &[R::Policy],
        events: &[],
    },
    Clause {
        id: "9.1",
        title: "Monitoring, measurement, analysis and evaluation",
        records: &[],
        events: &[
            "service_level.sla.*",
            "service_level.capacity.threshold_crossed",
        ],
    },
    Clause {
        id: "9.2",
        title: "Internal audit",
        records: &[R::Audits],
        events: &[],
    },
    Clause {
        id: "9.3",
        title: "Management review",
        records: &[R::Reviews],
        events: &[],
    },
    Clause {
        id: "9.4",
        title: "Service reporting",
        records: &[],
        events: &["relationship.satisfaction.recorded"],
    },
    Clause {
        id: "10.1",
        title: "Nonconformity and corrective action",
        records: &[R::Nonconformities],
        events: &[],
    },
    Clause {
        id: "10.2",
        title: "Continual improvement",
        records: &[R::Improvements],
        events: &[],
    },
];

/// The clause of `id`.
pub fn find(id: &str) -> Option<&'static Clause> {
    CLAUSES.iter().find(|c| c.id == id)
}

/// The operational processes (clause 8) that need an approved procedure for certification.
pub fn processes() -> impl Iterator<Item = &'static Clause> {
    CLAUSES
        .iter()
        .filter(|c| c.id.starts_with("8.") && !matches!(c.id, "8.3.1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clause_of_four_to_ten_is_listed_once() {
        let mut ids: Vec<&str> = CLAUSES.iter().map(|c| c.id).collect();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        for top in ["4.", "5.", "6.", "7.", "8.", "9.", "10."] {
            assert!(ids.iter().any(|i| i.starts_with(top)), "{top}");
        }
        assert!(find("8.5.1.3").is_some() && find("11.1").is_none());
        for c in CLAUSES {
            for pattern in c.events {
                assert!(pattern.split('.').count() >= 2, "{pattern}");
            }
        }
    }
}
