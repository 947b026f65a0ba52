//! The `control` section of the configuration.

use std::collections::BTreeMap;

use meridian_chassis::fields::Field;
use serde::Deserialize;

/// The defaults of the `control` section, compiled in.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// `control`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// CI types by name, each with its attribute schema. Default: service, application,
    /// database, server, kubernetes_namespace, kubernetes_workload, network, licence.
    pub ci_types: BTreeMap<String, CiType>,
    /// The change advisory board: who votes on normal changes. Default empty (set it).
    pub cab_members: Vec<String>,
    /// The emergency CAB: one of them decides an emergency change. Default empty (set it).
    pub emergency_cab: Vec<String>,
    /// Business hours (UTC), for the risk of a change's window. Default 08–18, Monday to Friday.
    pub business_hours: BusinessHours,
    /// Periods when no change may be scheduled, except emergencies or with a justified override.
    pub freeze_windows: Vec<FreezeWindow>,
    /// The catalogue of pre-approved standard change templates, by name.
    pub standard_templates: BTreeMap<String, StandardTemplate>,
    /// The change gate (a Kubernetes validating admission webhook).
    pub change_gate: ChangeGateConfig,
    /// Cluster discovery into the CMDB.
    pub discovery: DiscoveryConfig,
}

/// `control.change_gate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeGateConfig {
    /// Serve the admission webhook (`POST /v1/admission/change-gate`) on its own TLS listener.
    /// Default false.
    pub enabled: bool,
    /// The TLS listener. Default `0.0.0.0:8443`.
    pub bind: String,
    /// PEM certificate chain of the listener (cert-manager's `tls.crt`).
    pub tls_cert_file: String,
    /// PEM private key of the listener.
    pub tls_key_file: String,
    /// Members of these groups pass the gate; each pass is recorded as break-glass.
    pub break_glass_groups: Vec<String>,
    /// The annotation of a workload naming the change that covers it (its number or id).
    /// Default `meridian.io/change`.
    pub annotation: String,
}

/// `control.discovery`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Watch the cluster into the CMDB. Default false.
    pub enabled: bool,
    /// The label (or, failing it, the annotation) naming an object's owner.
    pub owner_label: String,
    /// The label (or annotation) naming the business service an object is part of.
    pub service_label: String,
    /// The owner of discovered CIs that name none.
    pub default_owner: String,
    /// This cluster's name, on every discovered CI (`attributes.cluster`).
    pub cluster: String,
}

/// `control.standard_templates.<name>`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StandardTemplate {
    /// What the change does.
    pub description: String,
    /// How it is carried out (copied to the change's implementation plan when it has none).
    #[serde(default)]
    pub implementation_plan: String,
}

/// `control.business_hours`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// First hour (0–23).
    pub start_hour: u32,
    /// Hour it ends (1–24).
    pub end_hour: u32,
    /// Monday to Friday only.
    pub weekdays_only: bool,
}

/// `control.freeze_windows[]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    /// e.g. `year-end close`.
    pub name: String,
    /// RFC 3339.
    pub start: chrono::DateTime<chrono::Utc>,
    /// RFC 3339, after `start`.
    pub end: chrono::DateTime<chrono::Utc>,
}

/// `control.ci_types.<name>`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CiType {
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Its attributes, typed.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, Field>,
}

impl ControlConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A key and what is wrong with it.
    pub fn validate(&self) -> Result<(), meridian_chassis::config::ConfigError> {
        if !self.ci_types.contains_key("service") {
            return Err(meridian_chassis::config::ConfigError::key(
                "control.ci_types",
                "must keep the `service` type (impact analysis reports the services affected)",
            ));
        }
        if self.business_hours.start_hour >= self.business_hours.end_hour
            || self.business_hours.end_hour > 24
        {
            return Err(meridian_chassis::config::ConfigError::key(
                "control.business_hours",
                "start_hour must come before end_hour, within 0–24",
            ));
        }
        if self.change_gate.enabled {
            for (key, value) in [
                ("tls_cert_file", &self.change_gate.tls_cert_file),
                ("tls_key_file", &self.change_gate.tls_key_file),
            ] {
                if value.is_empty() {
                    return Err(meridian_chassis::config::ConfigError::key(
                        format!("control.change_gate.{key}"),
                        "is required when the change gate is enabled (the API server calls it over TLS)",
                    ));
                }
            }
            if self
                .change_gate
                .bind
                .parse::<std::net::SocketAddr>()
                .is_err()
            {
                return Err(meridian_chassis::config::ConfigError::key(
                    "control.change_gate.bind",
                    "must be an address and port, e.g. 0.0.0.0:8443",
                ));
            }
        }
        if self.change_gate.annotation.is_empty() {
            return Err(meridian_chassis::config::ConfigError::key(
                "control.change_gate.annotation",
                "must not be empty",
            ));
        }
        for (i, freeze) in self.freeze_windows.iter().enumerate() {
            if freeze.end <= freeze.start {
                return Err(meridian_chassis::config::ConfigError::key(
                    format!("control.freeze_windows[{i}].end"),
                    "must be after start",
                ));
            }
        }
        for (name, ci_type) in &self.ci_types {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(meridian_chassis::config::ConfigError::key(
                    format!("control.ci_types.{name}"),
                    "a type name is lower case letters, digits and underscores",
                ));
            }
            for (attribute, field) in &ci_type.attributes {
                if !field.allowed.is_empty()
                    && field.kind != meridian_chassis::fields::FieldType::String
                {
                    return Err(meridian_chassis::config::ConfigError::key(
                        format!("control.ci_types.{name}.attributes.{attribute}.enum"),
                        "only strings have an enum",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Root {
        control: ControlConfig,
    }

    #[test]
    fn the_shipped_types_parse_and_validate() {
        let root: Root = meridian_chassis::config::load_from(&[DEFAULTS], None, vec![]).unwrap();
        root.control.validate().unwrap();
        assert!(root.control.ci_types.contains_key("kubernetes_workload"));
    }

    #[test]
    fn an_enum_on_a_number_is_refused_naming_the_key() {
        let root: Root = meridian_chassis::config::load_from(
            &[DEFAULTS, "control:\n  ci_types:\n    server:\n      attributes:\n        cores: { type: integer, enum: [a] }\n"],
            None,
            vec![],
        )
        .unwrap();
        let error = root.control.validate().unwrap_err().to_string();
        assert!(
            error.contains("control.ci_types.server.attributes.cores.enum"),
            "{error}"
        );
    }
}
