//! `meridian dev` and `meridian token`: everything in one process on SQLite with the in-process
//! bus, a per-data-folder secret for dev tokens, and a seeded demo organisation.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use meridian_chassis::auth::Authenticator;
use meridian_resolution::domain::incident::{Incident, NewIncident, ResolutionCode};
use meridian_resolution::domain::priority::Level;
use meridian_resolution::store::incidents::{self, Context};

use crate::app::{self, Config, Service};

fn secret_path(data: &Path) -> PathBuf {
    data.join("dev-secret")
}

/// The data folder's dev secret, made on first use (256 random bits, hex).
fn dev_secret(data: &Path) -> anyhow::Result<String> {
    let path = secret_path(data);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().to_owned());
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let mut bytes = [0u8; 32];
    getrandom_fill(&mut bytes)?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

fn getrandom_fill(bytes: &mut [u8]) -> anyhow::Result<()> {
    // uuid's v4 generator draws from the OS; two of them make 32 bytes.
    for chunk in bytes.chunks_mut(16) {
        let random = uuid::Uuid::new_v4();
        chunk.copy_from_slice(&random.as_bytes()[..chunk.len()]);
    }
    Ok(())
}

fn dev_layer(data: &Path, bind: &str, secret: &str) -> String {
    // The demo's freeze: midnight `days` from today.
    let today = meridian_chassis::Clock::now(&meridian_chassis::SystemClock).date_naive();
    let freeze = |days: u64| {
        (today + chrono::Days::new(days))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .to_rfc3339()
    };
    let db = data.join("resolution.db");
    let mail = data.join("mail");
    format!(
        "http:\n  bind: \"{bind}\"\ndatabase:\n  url: \"sqlite://{db}\"\n  pool_size: 8\n\
         bus:\n  kind: memory\nauth:\n  mode: dev\n  issuer: meridian-dev\n  audience: meridian\n  secret: \"{secret}\"\n\
         telemetry:\n  log_format: text\n  log_level: \"info,actix_server=warn\"\n\
         relationship:\n  public_url: \"http://{bind}\"\n  service_level_url: \"http://{bind}\"\n  surveys:\n    link_secret: \"{secret}-surveys\"\n\
         governance:\n  ledger:\n    signing_key: \"{ledger}\"\n\
         control:\n  cab_members: [bob, dave, erin]\n  emergency_cab: [alice, bob]\n  freeze_windows:\n    \
         - {{ name: \"Quarter-end close\", start: \"{freeze_start}\", end: \"{freeze_end}\" }}\n\
         notifier:\n  public_url: \"http://{bind}\"\n  email:\n    transport: file\n    file_dir: \"{mail}\"\n    from: \"Meridian dev <meridian@example.org>\"\n",
        db = db.display(),
        mail = mail.display(),
        ledger = ledger_seed(secret),
        freeze_start = freeze(6),
        freeze_end = freeze(9),
    )
}

/// The dev ledger signing key of a dev secret: the base64 of SHA-256 over it, so each data folder
/// signs its own ledger and `meridian audit verify --data` finds the key again.
fn ledger_seed(secret: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(
        format!("meridian-ledger:{secret}").as_bytes(),
    ))
}

/// The ledger signing key of the data folder `data`.
///
/// # Errors
/// No secret could be read or made.
pub fn ledger_key(data: &Path) -> anyhow::Result<String> {
    Ok(ledger_seed(&dev_secret(data)?))
}

/// The configuration of the `meridian dev` data folder `data` (its secret, its SQLite files),
/// for the commands that work on it.
///
/// # Errors
/// No secret could be read or made, or bad configuration.
pub fn config(file: Option<&Path>, data: &Path) -> anyhow::Result<Config> {
    let secret = dev_secret(data)?;
    let layer = dev_layer(data, "127.0.0.1:8080", &secret);
    Config::load_with(file, &[&layer])
}

/// `meridian token`.
///
/// # Errors
/// No secret could be read or made, or bad configuration.
pub fn token(
    file: Option<&Path>,
    data: &Path,
    sub: &str,
    roles: &[String],
    ttl_hours: i64,
) -> anyhow::Result<String> {
    let config = config(file, data)?;
    let auth = Authenticator::new(&config.auth)?;
    auth.mint_dev(
        sub,
        roles,
        meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
        chrono::Duration::hours(ttl_hours),
    )
}

/// `meridian dev`.
///
/// # Errors
/// Start-up failures, named.
pub async fn run(file: Option<&Path>, data: &Path, bind: &str) -> anyhow::Result<()> {
    let secret = dev_secret(data)?;
    let layer = dev_layer(data, bind, &secret);
    let config = Config::load_with(file, &[&layer])?;
    meridian_chassis::telemetry::init_logs(&config.telemetry)?;
    let runtime = app::Runtime::new(config).await?;
    // One SQLite file per service, as each service owns its database.
    let mut dbs = Vec::new();
    for service in Service::ALL {
        let url = format!(
            "sqlite://{}",
            data.join(format!("{}.db", service.name())).display()
        );
        let (db, waker) = runtime.database(service, &url, true).await?;
        dbs.push((db, waker));
    }
    let mut dbs = dbs.into_iter();
    let (db, waker) = dbs.next().context("resolution database")?;
    let resolution = runtime.resolution(db, waker);
    let (db, waker) = dbs.next().context("workflow database")?;
    let workflow = runtime.workflow(db, waker).await?;
    let (db, waker) = dbs.next().context("control database")?;
    let control = runtime.control(db, waker);
    let (db, waker) = dbs.next().context("notifier database")?;
    let notifier = runtime.notifier(db, waker)?;
    let (db, waker) = dbs.next().context("service-level database")?;
    let service_level = runtime.service_level(db, waker).await?;
    let (db, waker) = dbs.next().context("relationship database")?;
    let relationship = runtime.relationship(db, waker).await?;
    let (db, waker) = dbs.next().context("governance database")?;
    let governance = runtime.governance(db, waker).await?;
    seed_governance(&governance).await?;
    seed_service_level(&service_level).await?;
    seed_relationship(&relationship).await?;
    // What the seed made due (the supplier review, the contract's expiry notice) starts now,
    // not at the scheduler's next look.
    meridian_relationship::scheduler::tick(&relationship).await?;
    seed_directory(&notifier).await?;
    seed(&runtime, &resolution).await?;
    let services = app::Services {
        resolution: Some(resolution),
        workflow: Some(workflow),
        control: Some(control),
        notifier: Some(notifier),
        service_level: Some(service_level),
        relationship: Some(relationship),
        governance: Some(governance),
        dev_people: dev_people(),
    };
    let (address, server) = app::http_server(&runtime, services, bind)?;
    println!(
        "\nMeridian dev is running (SQLite under {data}, in-process bus).\n\n  \
         Console:  http://{address}/console/\n  \
         API:      http://{address}/v1/incidents   http://{address}/v1/tasks?candidate=me\n  \
         OpenAPI:  http://{address}/v1/openapi.json\n  \
         Health:   http://{address}/readyz   Metrics: http://{address}/metrics\n  \
         Evidence: http://{address}/v1/evidence?format=html (every ISO/IEC 20000-1 clause, its records and its gaps)\n  \
         Mail:     every e-mail (with its action links) is written to {mail}\n",
        data = data.display(),
        mail = data.join("mail").display(),
    );
    // With tokens from an identity provider (a configuration file setting `auth.mode: jwks`),
    // people sign in with it; the demo's own tokens, and the demo CMDB and changes made with
    // them, exist only with the dev secret.
    if !runtime.auth.dev_mode() {
        println!("  Sign in at the console with the identity provider (console.oidc).\n");
        return app::run_until_stopped(server).await;
    }
    let token = runtime.auth.mint_dev(
        "alice",
        &[
            "agent".to_owned(),
            "incident-manager".to_owned(),
            "change-manager".to_owned(),
            "configuration-manager".to_owned(),
        ],
        runtime.clock.now(),
        chrono::Duration::hours(12),
    )?;
    println!(
        "  The console offers the demo people to sign in as.\n\n  \
         Token for alice (agent, incident-manager, change-manager, configuration-manager), valid 12 hours:\n\n{token}\n\n  \
         Try:  curl -H \"Authorization: Bearer $TOKEN\" http://{address}/v1/incidents\n  \
         Other users: meridian token --sub bob --roles requester --data {data}\n",
        data = data.display(),
    );
    let seeder = {
        let auth = runtime.auth.clone();
        let now = runtime.clock.now();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = seed_cmdb_and_changes(&format!("http://{address}"), &auth, now) {
                tracing::warn!(%error, "the demo CMDB and changes could not be seeded");
            }
        })
    };
    let served = app::run_until_stopped(server).await;
    seeder.abort();
    served
}

/// The demo CMDB and changes, through the API (so the change workflows start as they would for
/// anyone), once per data folder: services, applications, databases and hosts with their
/// relations; a database upgrade raised by dave, risk assessed high by alice and now before the
/// CAB (bob, dave, erin; dave cannot decide his own change); and a host patch that conflicts with
/// it, waiting for alice's risk assessment.
fn seed_cmdb_and_changes(
    base: &str,
    auth: &meridian_chassis::auth::Authenticator,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    use serde_json::{Value, json};
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let alice = auth.mint_dev(
        "alice",
        &[
            "agent".to_owned(),
            "configuration-manager".to_owned(),
            "change-manager".to_owned(),
        ],
        now,
        chrono::Duration::hours(1),
    )?;
    let dave = auth.mint_dev(
        "dave",
        &["agent".to_owned(), "cab".to_owned()],
        now,
        chrono::Duration::hours(1),
    )?;
    let call =
        |method: &str, path: &str, token: &str, body: Option<Value>| -> anyhow::Result<Value> {
            let url = format!("{base}{path}");
            let bearer = format!("Bearer {token}");
            let mut response = match body {
                Some(body) if method == "PUT" => agent
                    .put(&url)
                    .header("Authorization", &bearer)
                    .content_type("application/json")
                    .send(body.to_string())?,
                Some(body) => agent
                    .post(&url)
                    .header("Authorization", &bearer)
                    .content_type("application/json")
                    .send(body.to_string())?,
                None if method == "POST" => agent
                    .post(&url)
                    .header("Authorization", &bearer)
                    .send_empty()?,
                None => agent.get(&url).header("Authorization", &bearer).call()?,
            };
            let status = response.status();
            let text = response.body_mut().read_to_string()?;
            anyhow::ensure!(status.is_success(), "{method} {path}: {status} {text}");
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        };
    // Wait for the server.
    let mut up = false;
    for _ in 0..100 {
        if agent
            .get(&format!("{base}/readyz"))
            .call()
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    anyhow::ensure!(up, "the server did not answer");
    let existing = call("GET", "/v1/cis?limit=1", &alice, None)?;
    if existing["items"]
        .as_array()
        .is_some_and(|items| !items.is_empty())
    {
        return Ok(());
    }
    let cis = [
        (
            "intranet",
            "service",
            "olga",
            "high",
            json!({"sla": "gold"}),
        ),
        (
            "payroll",
            "service",
            "olga",
            "critical",
            json!({"sla": "gold"}),
        ),
        ("email", "service", "olga", "high", json!({"sla": "silver"})),
        (
            "intranet-web",
            "application",
            "alice",
            "high",
            json!({"version": "4.2.1"}),
        ),
        (
            "payroll-app",
            "application",
            "alice",
            "critical",
            json!({"version": "2024.3"}),
        ),
        (
            "intranet-db",
            "database",
            "alice",
            "high",
            json!({"engine": "postgresql", "version": "15"}),
        ),
        (
            "payroll-db",
            "database",
            "alice",
            "critical",
            json!({"engine": "postgresql", "version": "15"}),
        ),
        (
            "db-host-1",
            "server",
            "alice",
            "high",
            json!({"hostname": "db-host-1.example.org", "cores": 16}),
        ),
        (
            "app-host-1",
            "server",
            "alice",
            "medium",
            json!({"hostname": "app-host-1.example.org", "cores": 8}),
        ),
        (
            "mx-gateway",
            "server",
            "alice",
            "high",
            json!({"hostname": "mx.example.org", "cores": 4}),
        ),
    ];
    let mut ids = std::collections::HashMap::new();
    for (name, kind, owner, criticality, attributes) in cis {
        let ci = call(
            "POST",
            "/v1/cis",
            &alice,
            Some(json!({"ci_type": kind, "name": name, "owner": owner,
                "criticality": criticality, "attributes": attributes})),
        )?;
        ids.insert(name, ci["id"].as_str().unwrap_or_default().to_owned());
    }
    let relations = [
        ("intranet", "depends_on", "intranet-web"),
        ("intranet-web", "depends_on", "intranet-db"),
        ("intranet-web", "runs_on", "app-host-1"),
        ("intranet-db", "runs_on", "db-host-1"),
        ("payroll", "depends_on", "payroll-app"),
        ("payroll-app", "depends_on", "payroll-db"),
        ("payroll-app", "runs_on", "app-host-1"),
        ("payroll-db", "runs_on", "db-host-1"),
        ("email", "depends_on", "mx-gateway"),
    ];
    for (source, kind, target) in relations {
        call(
            "POST",
            &format!("/v1/cis/{}/relations", ids[source]),
            &alice,
            Some(json!({"kind": kind, "target": ids[target]})),
        )?;
    }
    let day = |d: i64, h: u32| {
        (now.date_naive() + chrono::Days::new(u64::try_from(d).unwrap_or(0)))
            .and_hms_opt(h, 0, 0)
            .unwrap_or_default()
            .and_utc()
    };
    let changes = [
        (
            "Upgrade the intranet database to PostgreSQL 16",
            "PostgreSQL 15 leaves community support next year; 16 brings faster vacuum.",
            "intranet-db",
            day(3, 20),
            day(3, 23),
        ),
        (
            "Patch the operating system of db-host-1",
            "Monthly security patches, two of them critical.",
            "db-host-1",
            day(3, 22),
            day(4, 1),
        ),
    ];
    // Availability: the agreed targets, a payroll outage last week that missed its target, and
    // planned intranet maintenance.
    let olga = auth.mint_dev(
        "olga",
        &["service-level-manager".to_owned()],
        now,
        chrono::Duration::hours(1),
    )?;
    for (service, target) in [("email", 99.9), ("intranet", 99.5), ("payroll", 99.95)] {
        call(
            "PUT",
            &format!("/v1/services/{service}/availability-target"),
            &olga,
            Some(json!({"target_percent": target})),
        )?;
    }
    let ago =
        |days: i64, hours: i64| now - chrono::Duration::days(days) + chrono::Duration::hours(hours);
    for (service, start, end, planned, what) in [
        (
            "payroll",
            ago(5, 0),
            ago(5, 1),
            false,
            "The payroll database ran out of connections.",
        ),
        (
            "intranet",
            ago(2, 0),
            ago(2, 2),
            true,
            "Planned maintenance of the intranet web servers.",
        ),
    ] {
        call(
            "POST",
            "/v1/outages",
            &olga,
            Some(json!({"service": service, "started_at": start.to_rfc3339(),
                "ended_at": end.to_rfc3339(), "planned": planned, "description": what})),
        )?;
    }
    // The mail incident is worked and resolved within its SLA: the attainment has a measure.
    let mail = call("GET", "/v1/incidents?service=email&limit=1", &alice, None)?;
    if let Some(id) = mail["items"][0]["id"].as_str() {
        call("POST", &format!("/v1/incidents/{id}/start"), &alice, None)?;
        call(
            "POST",
            &format!("/v1/incidents/{id}/resolve"),
            &alice,
            Some(json!({"code": "solved_permanently",
                "notes": "Cleared the stuck queue on the mail gateway."})),
        )?;
    }
    let mut raised = Vec::new();
    for (title, reason, ci, start, end) in changes {
        let change = call(
            "POST",
            "/v1/changes",
            &dave,
            Some(
                json!({"title": title, "reason": reason, "category": "normal",
                "configuration_items": [ids[ci]],
                "window_start": start.to_rfc3339(), "window_end": end.to_rfc3339(),
                "implementation_plan": "Follow the runbook step by step, with a DBA on the call.",
                "test_plan": "Smoke tests of the intranet, then the monitoring dashboards for an hour.",
                "backout_plan": "Restore the snapshot taken just before; the service is back in 20 minutes."}),
            ),
        )?;
        let id = change["id"].as_str().unwrap_or_default().to_owned();
        call("POST", &format!("/v1/changes/{id}/submit"), &dave, None)?;
        raised.push(id);
    }
    // Alice assesses the first change as high risk: it goes to the board.
    for _ in 0..100 {
        let tasks = call("GET", "/v1/tasks?candidate=me&limit=50", &alice, None)?;
        if let Some(task) = tasks["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["business_key"] == raised[0].as_str() && t["node"] == "triage")
        {
            let id = task["id"].as_str().unwrap_or_default();
            call(
                "POST",
                &format!("/v1/tasks/{id}/complete"),
                &alice,
                Some(json!({"outcome": "assessed", "fields": {"risk": "high"},
                    "comment": "A major version upgrade of a database the intranet depends on."})),
            )?;
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    anyhow::bail!("the first change's risk assessment task never appeared")
}

/// The demo organisation's people: id, name, roles.
const DEMO_PEOPLE: [(&str, &str, &[&str]); 10] = [
    (
        "alice",
        "Alice Martin",
        &[
            "agent",
            "incident-manager",
            "change-manager",
            "configuration-manager",
        ],
    ),
    ("bob", "Bob Chen", &["cab"]),
    ("carol", "Carol Diaz", &["requester"]),
    ("dave", "Dave Okafor", &["cab", "agent"]),
    ("erin", "Erin Novak", &["cab", "request-approver"]),
    ("rita", "Rita Moreau", &["relationship-manager"]),
    ("sam", "Sam Ito", &["supplier-manager"]),
    ("olga", "Olga Berg", &["service-owner", "service-manager"]),
    (
        "mia",
        "Mia Laurent",
        &["sms-manager", "document-controller"],
    ),
    ("ian", "Ian Park", &["auditor"]),
];

/// The demo organisation's people as the console's dev login offers them.
fn dev_people() -> Vec<crate::console::Person> {
    DEMO_PEOPLE
        .iter()
        .map(|(id, name, roles)| crate::console::Person {
            id: (*id).to_owned(),
            name: (*name).to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        })
        .collect()
}

/// The demo organisation's people in the notifier's directory (e-mail, roles), once per data
/// folder.
async fn seed_directory(notifier: &meridian_notifier::Notifier) -> anyhow::Result<()> {
    use meridian_notifier::store::recipients::{self, RecipientRow};
    let now = notifier.clock.now().naive_utc();
    let people = DEMO_PEOPLE;
    notifier
        .db
        .transaction(move |conn| -> anyhow::Result<()> {
            for (user, name, roles) in people {
                if recipients::find(conn, user)?.is_some() {
                    continue;
                }
                recipients::upsert(
                    conn,
                    &RecipientRow {
                        user_id: user.to_owned(),
                        display_name: name.to_owned(),
                        email: Some(format!("{user}@example.org")),
                        slack_webhook: None,
                        teams_webhook: None,
                        roles: serde_json::to_string(roles)?,
                        groups: "[]".to_owned(),
                        channel: "email".to_owned(),
                        quiet_start: None,
                        quiet_end: None,
                        timezone: "UTC".to_owned(),
                        active: true,
                        updated_at: now,
                    },
                )?;
            }
            seed_rules(conn, now)?;
            Ok(())
        })
        .await
}

/// Routing rules that deliver the relationship service's notices: survey links to whom they
/// ask, escalated complaints to the role they go to, expiring contracts to their owner.
fn seed_rules(
    conn: &mut meridian_chassis::db::AnyConnection,
    now: chrono::NaiveDateTime,
) -> anyhow::Result<()> {
    use meridian_notifier::store::rules::{self, RuleRow};
    let seeded: [(&str, &str, &str, &str, &str, &str); 3] = [
        (
            "seed-survey",
            "Satisfaction surveys to whom they ask",
            "relationship.survey.sent",
            "event_user",
            "How did we do on {{ event.data.ticket_number or event.data.service }}?",
            "Please tell us in one click: {{ event.data.link }}",
        ),
        (
            "seed-complaint",
            "Escalated complaints to the role they go to",
            "relationship.complaint.escalated",
            "event_role",
            "Complaint {{ event.data.number }} escalated (level {{ event.data.escalation_level }})",
            "{{ event.data.summary }} is not resolved in time.",
        ),
        (
            "seed-contract",
            "Expiring contracts to their owner",
            "relationship.contract.expiring",
            "event_user",
            "Contract {{ event.data.number }} with {{ event.data.supplier_name }} ends {{ event.data.ends_on }}",
            "Notice must be given by {{ event.data.notice_by }}.",
        ),
    ];
    for (id, name, pattern, kind, subject, body) in seeded {
        if rules::find(conn, id)?.is_some() {
            continue;
        }
        rules::upsert(
            conn,
            &RuleRow {
                id: id.to_owned(),
                name: name.to_owned(),
                event_pattern: pattern.to_owned(),
                audience_kind: kind.to_owned(),
                audience: "recipient".to_owned(),
                channel: "preferred".to_owned(),
                destination: None,
                urgent: false,
                subject_template: Some(subject.to_owned()),
                body_template: Some(body.to_owned()),
                enabled: true,
                created_by: "system:seed".to_owned(),
                created_at: now,
            },
        )?;
    }
    Ok(())
}

/// The demo organisation's customer (all staff, receiving every service, Carol its contact)
/// and its mail hosting supplier under a contract with targets and a first month measured,
/// once per data folder.
async fn seed_relationship(
    relationship: &meridian_relationship::Relationship,
) -> anyhow::Result<()> {
    use meridian_relationship::store::customers::{self, CustomerRow, PartyRow};
    use meridian_relationship::store::suppliers::{self, ContractRow, MeasurementRow, SupplierRow};
    let now = relationship.clock.now();
    relationship
        .db
        .transaction(move |conn| -> anyhow::Result<()> {
            if customers::customer(conn, "all-staff")?.is_some() {
                return Ok(());
            }
            let at = now.naive_utc();
            let today = now.date_naive();
            customers::save_customer(
                conn,
                &CustomerRow {
                    id: "all-staff".to_owned(),
                    name: "All staff".to_owned(),
                    kind: "internal".to_owned(),
                    account_manager: "rita".to_owned(),
                    services: r#"["email","payroll","intranet"]"#.to_owned(),
                    review_interval_days: 90,
                    survey_interval_days: Some(180),
                    notes: String::new(),
                    last_survey_at: Some(at),
                    created_by: "system:seed".to_owned(),
                    created_at: at,
                    updated_at: at,
                },
                true,
            )?;
            customers::save_party(
                conn,
                &PartyRow {
                    id: "carol".to_owned(),
                    customer_id: Some("all-staff".to_owned()),
                    kind: "contact".to_owned(),
                    name: "Carol Diaz".to_owned(),
                    email: "carol@example.org".to_owned(),
                    user_id: "carol".to_owned(),
                    requirements: String::new(),
                    created_at: at,
                    updated_at: at,
                },
                true,
            )?;
            suppliers::save_supplier(
                conn,
                &SupplierRow {
                    id: "cloudco".to_owned(),
                    name: "CloudCo".to_owned(),
                    kind: "external".to_owned(),
                    customer_id: None,
                    manager: "sam".to_owned(),
                    contact_email: "service@cloudco.example".to_owned(),
                    operates: r#"[{"kind":"service_component","name":"Mailbox hosting","service":"email","controls":"Monthly service report, quarterly review"}]"#.to_owned(),
                    status: "active".to_owned(),
                    created_at: at,
                    updated_at: at,
                },
                true,
            )?;
            let contract = ContractRow {
                id: "seed-cloudco-mail".to_owned(),
                number: meridian_relationship::store::next_number(conn, "contract", "CON")?,
                supplier_id: "cloudco".to_owned(),
                kind: "contract".to_owned(),
                title: "Mailbox hosting".to_owned(),
                scope: "Hosted mailboxes for all staff, with backup and spam filtering".to_owned(),
                services: r#"["email"]"#.to_owned(),
                targets: r#"[{"metric":"availability","target":99.9,"unit":"%","comparison":"at_least"},{"metric":"response_hours","target":4.0,"unit":"hours","comparison":"at_most"}]"#.to_owned(),
                roles: "CloudCo operates the platform; IT services own the service and the first line.".to_owned(),
                interfaces: "Tickets to CloudCo's desk; monthly report by e-mail.".to_owned(),
                starts_on: today - chrono::Duration::days(265),
                ends_on: Some(today + chrono::Duration::days(100)),
                notice_days: 90,
                value: Some(48_000.0),
                currency: "EUR".to_owned(),
                owner: "olga".to_owned(),
                review_interval_days: 90,
                next_review_due: today,
                state: "active".to_owned(),
                expiry_notified: false,
                created_by: "system:seed".to_owned(),
                created_at: at,
                updated_at: at,
            };
            suppliers::save_contract(conn, &contract, true)?;
            for (metric, value) in [("availability", 99.95), ("response_hours", 3.5)] {
                suppliers::add_measurement(
                    conn,
                    &MeasurementRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        contract_id: contract.id.clone(),
                        metric: metric.to_owned(),
                        value,
                        period_from: today - chrono::Duration::days(30),
                        period_to: today - chrono::Duration::days(1),
                        met: true,
                        notes: "Monthly service report".to_owned(),
                        recorded_by: "sam".to_owned(),
                        recorded_at: at,
                    },
                )?;
            }
            Ok(())
        })
        .await?;
    relationship.waker.wake();
    Ok(())
}

/// What users may order under the demo e-mail service: a mailbox the desk creates once a request
/// approver agrees, and a shared mailbox fulfilled through the request-fulfilment workflow.
const EMAIL_ITEMS: &str = r#"[
    {"id": "new-mailbox", "name": "A new mailbox", "needs_approval": true,
     "fields": {"owner": {"type": "string", "required": true}, "quota_gb": {"type": "integer"}}},
    {"id": "shared-mailbox", "name": "A shared mailbox", "needs_approval": true,
     "workflow": "request-fulfilment",
     "fields": {"members": {"type": "string_list", "required": true}}}
]"#;

/// The demo catalogue, an office-hours and a 24×7 calendar, and the e-mail service's SLA, once
/// per data folder; the catalogue is published to the other services through the outbox.
async fn seed_service_level(
    service_level: &meridian_service_level::ServiceLevel,
) -> anyhow::Result<()> {
    use meridian_service_level::store::agreements::{self, AgreementRow, CalendarRow};
    use meridian_service_level::store::catalogue::{self, ServiceRow};
    let now = service_level.clock.now();
    service_level
        .db
        .transaction(move |conn| -> anyhow::Result<()> {
            if !catalogue::list(conn, None)?.is_empty() {
                return Ok(());
            }
            let at = now.naive_utc();
            for (id, name, criticality, outcome) in [
                ("email", "E-mail", "critical", "Staff send and receive mail from anywhere"),
                ("payroll", "Payroll", "high", "Staff are paid correctly and on time"),
                ("intranet", "Intranet", "medium", "Staff find company news and documents"),
            ] {
                let row = ServiceRow {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    owner: "it-services".to_owned(),
                    description: String::new(),
                    outcome: outcome.to_owned(),
                    customers: r#"["all-staff"]"#.to_owned(),
                    depends_on: "[]".to_owned(),
                    configuration_items: "[]".to_owned(),
                    criticality: criticality.to_owned(),
                    status: "live".to_owned(),
                    request_items: if id == "email" { EMAIL_ITEMS } else { "[]" }.to_owned(),
                    revision: 1,
                    created_at: at,
                    updated_at: at,
                };
                catalogue::save(conn, None, &row, "system:seed", now)?;
            }
            let office = r#"[{"start":"08:00","end":"18:00"},{"start":"08:00","end":"18:00"},{"start":"08:00","end":"18:00"},{"start":"08:00","end":"18:00"},{"start":"08:00","end":"18:00"},null,null]"#;
            let always = r#"[{"start":"00:00","end":"24:00"},{"start":"00:00","end":"24:00"},{"start":"00:00","end":"24:00"},{"start":"00:00","end":"24:00"},{"start":"00:00","end":"24:00"},{"start":"00:00","end":"24:00"},{"start":"00:00","end":"24:00"}]"#;
            for (id, name, week) in [("office-hours", "Office hours (Europe/Paris)", office), ("always", "24×7", always)] {
                agreements::save_calendar(
                    conn,
                    &CalendarRow {
                        id: id.to_owned(),
                        name: name.to_owned(),
                        timezone: if id == "always" { "UTC" } else { "Europe/Paris" }.to_owned(),
                        week: week.to_owned(),
                        holidays: r#"["2026-12-25","2027-01-01"]"#.to_owned(),
                        updated_at: at,
                    },
                )?;
            }
            agreements::save(
                conn,
                &AgreementRow {
                    id: "email-sla".to_owned(),
                    kind: "sla".to_owned(),
                    name: "E-mail for all staff".to_owned(),
                    service: "email".to_owned(),
                    customer: Some("all-staff".to_owned()),
                    group_name: None,
                    calendar_id: "always".to_owned(),
                    targets: r#"{"1":{"response_minutes":15,"resolution_minutes":240},"2":{"response_minutes":30,"resolution_minutes":480},"3":{"response_minutes":240,"resolution_minutes":1440},"4":{"response_minutes":480,"resolution_minutes":4320},"5":{"response_minutes":1440,"resolution_minutes":7200}}"#.to_owned(),
                    warning_percent: 75,
                    pause_reasons: r#"["awaiting_caller","awaiting_supplier"]"#.to_owned(),
                    workload_limit: "500 incidents a month".to_owned(),
                    exceptions: "Planned maintenance announced a week ahead".to_owned(),
                    active: true,
                    created_at: at,
                    updated_at: at,
                    applies_to: r#"["incident","request"]"#.to_owned(),
                },
            )?;
            Ok(())
        })
        .await?;
    service_level.waker.wake();
    Ok(())
}

/// The demo organisation: a small catalogue and a few incidents, once per data folder.
async fn seed(
    runtime: &app::Runtime,
    resolution: &meridian_resolution::Resolution,
) -> anyhow::Result<()> {
    let now = runtime.clock.now();

    let matrix = runtime.config.resolution.priority_matrix;
    resolution
        .db
        .transaction(move |conn| -> anyhow::Result<()> {
            let existing = incidents::list(
                conn,
                &incidents::Filter::default(),
                incidents::Sort::CreatedAsc,
                None,
                1,
            )?;
            if !existing.is_empty() {
                return Ok(());
            }
            let ctx = Context {
                actor: "system:seed",
                now,
                correlation_id: None,
            };
            let demo = [
                (
                    "Mail delivery delayed for the finance team",
                    "email",
                    Level::Medium,
                    Level::High,
                    Some("messaging"),
                    &["mx-gateway"][..],
                ),
                (
                    "Payroll export fails with a timeout",
                    "payroll",
                    Level::High,
                    Level::Medium,
                    Some("payroll-team"),
                    &["payroll-db"][..],
                ),
                (
                    "Intranet search returns no results",
                    "intranet",
                    Level::Low,
                    Level::Low,
                    None,
                    &[][..],
                ),
                (
                    "VPN drops every few minutes",
                    "intranet",
                    Level::Medium,
                    Level::Medium,
                    Some("network"),
                    &[][..],
                ),
            ];
            for (i, (title, service, impact, urgency, group, cis)) in demo.into_iter().enumerate() {
                let number = incidents::next_number(conn)?;
                let (mut incident, mut events) = Incident::open(
                    uuid::Uuid::now_v7(),
                    number,
                    NewIncident {
                        title: title.to_owned(),
                        description: String::new(),
                        caller: "carol".to_owned(),
                        service: Some(service.to_owned()),
                        configuration_items: cis.iter().map(|c| (*c).to_owned()).collect(),
                        category: Some("software".to_owned()),
                        impact,
                        urgency,
                        assignment_group: group.map(str::to_owned),
                        assignee: None,
                    },
                    &matrix,
                    "carol",
                    now,
                );
                incidents::insert(conn, &incident, &events, ctx)?;
                if i == 3 {
                    let before = incident.clone();
                    events = incident.start("dave", now)?;
                    events.extend(incident.resolve(
                        ResolutionCode::SolvedWorkaround,
                        "Pinned the VPN client to the previous release".to_owned(),
                        now,
                    )?);
                    incidents::save(conn, &before, &incident, &events, ctx)?;
                }
            }
            Ok(())
        })
        .await?;
    resolution.waker.wake();
    Ok(())
}

/// The demo organisation's management system, once per data folder: its context, scope, roles,
/// a competence record, approved policy, plan and procedures (incidents, changes), risks, an
/// objective, and an internal audit of clauses 8.5 and 8.6 completed last month. No management
/// review yet and no information security policy: the evidence report shows those gaps.
///
/// # Errors
/// The database failing.
pub async fn seed_governance(governance: &meridian_governance::Governance) -> anyhow::Result<()> {
    use meridian_governance::store::rows::{
        self, AuditRow, CompetenceRow, ContextRow, DocumentRow, ObjectiveRow, RiskRow, RoleRow,
        ScopeRow, VersionRow,
    };
    let now = governance.clock.now();
    let criteria = governance.config.risks;
    governance
        .db
        .transaction(move |conn| -> anyhow::Result<()> {
            if !rows::scopes(conn)?.is_empty() {
                return Ok(());
            }
            let at = now.naive_utc();
            let today = now.date_naive();
            let id = || uuid::Uuid::now_v7().to_string();
            for (kind, title, requirements) in [
                ("external_issue", "Data protection regulation applies to staff records", ""),
                ("internal_issue", "An IT team of twelve runs every service", ""),
                ("interested_party", "All staff", "Mail and payroll available in working hours; payroll on time"),
            ] {
                rows::save_context(conn, &ContextRow {
                    id: id(),
                    kind: kind.to_owned(),
                    title: title.to_owned(),
                    description: String::new(),
                    requirements: requirements.to_owned(),
                    owner: "mia".to_owned(),
                    created_at: at,
                    updated_at: at,
                }, true)?;
            }
            rows::add_scope(conn, &ScopeRow {
                version: 1,
                statement: "The IT services delivered to all staff from the Paris office".to_owned(),
                services: r#"["email","payroll","intranet"]"#.to_owned(),
                locations: r#"["Paris"]"#.to_owned(),
                parties: r#"["IT services","All staff","CloudCo"]"#.to_owned(),
                exclusions: String::new(),
                created_by: "mia".to_owned(),
                created_at: at,
            })?;
            for (role, name, holders) in [
                ("sms-owner", "SMS owner", r#"["mia"]"#),
                ("incident-manager", "Incident manager", r#"["alice"]"#),
                ("change-manager", "Change manager", r#"["alice"]"#),
            ] {
                rows::save_role(conn, &RoleRow {
                    id: role.to_owned(),
                    name: name.to_owned(),
                    responsibilities: format!("Runs the {name} role as the SMS plan describes"),
                    authorities: String::new(),
                    holders: holders.to_owned(),
                    updated_by: "mia".to_owned(),
                    updated_at: at,
                }, true)?;
            }
            rows::add_competence(conn, &CompetenceRow {
                id: id(),
                person: "alice".to_owned(),
                role_id: Some("incident-manager".to_owned()),
                competence: "ITIL 4 Foundation".to_owned(),
                evidence: "Certificate 4471-22".to_owned(),
                acquired_on: today - chrono::Duration::days(400),
                expires_on: None,
                recorded_by: "mia".to_owned(),
                recorded_at: at,
            })?;
            for (reference, title, kind, clauses) in [
                ("POL-001", "Service management policy", "policy", r#"["5.2"]"#),
                ("PLN-001", "Service management plan", "plan", r#"["4.4","6.3"]"#),
                ("PRC-861", "Incident management procedure", "procedure", r#"["8.6.1"]"#),
                ("PRC-851", "Change management procedure", "procedure", r#"["8.5.1.1","8.5.1.2","8.5.1.3"]"#),
            ] {
                let doc = DocumentRow {
                    id: id(),
                    reference: reference.to_owned(),
                    title: title.to_owned(),
                    kind: kind.to_owned(),
                    clauses: clauses.to_owned(),
                    owner: "mia".to_owned(),
                    access_roles: "[]".to_owned(),
                    retention_years: 6,
                    review_interval_days: 365,
                    status: "approved".to_owned(),
                    current_version: Some(1),
                    approved_at: Some(at),
                    created_by: "mia".to_owned(),
                    created_at: at,
                    updated_at: at,
                };
                rows::save_document(conn, &doc, true)?;
                rows::save_version(conn, &VersionRow {
                    id: id(),
                    document_id: doc.id.clone(),
                    version: 1,
                    status: "approved".to_owned(),
                    body: format!("{title}: see the organisation's handbook."),
                    change_summary: "First issue".to_owned(),
                    author: "mia".to_owned(),
                    reviewers: r#"["ian"]"#.to_owned(),
                    approver: "ceo".to_owned(),
                    submitted_at: Some(at),
                    approved_at: Some(at),
                    instance_outcome: "approved".to_owned(),
                    created_at: at,
                    updated_at: at,
                }, true)?;
            }
            for (title, category, likelihood, impact, treatment, plan) in [
                ("Mail provider outage", "supplier", 3, 5, "mitigate", "Second provider for outbound mail"),
                ("Payroll run late at year end", "service", 2, 3, "accept", ""),
            ] {
                let (score, level) = meridian_governance::domain::assess(likelihood, impact, criteria);
                let number = meridian_governance::store::next_number(conn, "risk", "RSK")?;
                rows::save_risk(conn, &RiskRow {
                    id: id(),
                    number,
                    kind: "risk".to_owned(),
                    title: title.to_owned(),
                    description: String::new(),
                    category: category.to_owned(),
                    owner: "mia".to_owned(),
                    likelihood,
                    impact,
                    score,
                    level: level.to_owned(),
                    treatment: treatment.to_owned(),
                    treatment_plan: plan.to_owned(),
                    treatment_owner: if plan.is_empty() { String::new() } else { "olga".to_owned() },
                    treatment_due: (!plan.is_empty()).then(|| today + chrono::Duration::days(90)),
                    state: "open".to_owned(),
                    review_interval_days: 90,
                    last_reviewed_at: at,
                    created_by: "mia".to_owned(),
                    created_at: at,
                    updated_at: at,
                }, true)?;
            }
            rows::save_objective(conn, &ObjectiveRow {
                id: id(),
                title: "Resolve 90% of P2 incidents within target".to_owned(),
                measure: "Share of P2 incidents resolved within the SLA, per quarter".to_owned(),
                owner: "alice".to_owned(),
                baseline: 80.0,
                target: 90.0,
                unit: "%".to_owned(),
                direction: "at_least".to_owned(),
                current_value: Some(85.0),
                due_on: today + chrono::Duration::days(180),
                state: "open".to_owned(),
                created_by: "mia".to_owned(),
                created_at: at,
                updated_at: at,
            }, true)?;
            let done = at - chrono::Duration::days(30);
            let number = meridian_governance::store::next_number(conn, "audit", "AUD")?;
            rows::save_audit(conn, &AuditRow {
                id: id(),
                number,
                title: "Incidents and changes".to_owned(),
                criteria: "ISO/IEC 20000-1:2018, PRC-861, PRC-851".to_owned(),
                clauses: r#"["8.5","8.6"]"#.to_owned(),
                area: "Service desk and change management".to_owned(),
                area_members: r#"["alice","dave"]"#.to_owned(),
                lead_auditor: "ian".to_owned(),
                auditors: "[]".to_owned(),
                planned_for: done.date(),
                state: "completed".to_owned(),
                checklist: "[]".to_owned(),
                report: "Incident and change management conform; problem trends are not yet analysed (observation).".to_owned(),
                started_at: Some(done),
                completed_at: Some(done),
                created_by: "ian".to_owned(),
                created_at: done,
                updated_at: done,
            }, true)?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use meridian_chassis::testing::{Backend, TestDb};
    use meridian_proto::Message;

    /// The evidence report of the demo organisation `meridian dev` seeds: what it has evidence
    /// of, and the gaps an auditor would find.
    #[tokio::test]
    async fn the_demo_organisation_has_its_evidence_and_its_gaps() {
        let db = TestDb::new(Backend::Sqlite, meridian_governance::store::MIGRATIONS).await;
        #[derive(serde::Deserialize)]
        struct Root {
            governance: meridian_governance::GovernanceConfig,
        }
        let layer = format!(
            "governance:\n  ledger:\n    signing_key: \"{}\"\n",
            super::ledger_seed("demo")
        );
        let root: Root = meridian_chassis::config::load_from(
            &[meridian_governance::config::DEFAULTS, &layer],
            None,
            vec![],
        )
        .unwrap();
        let clock = Arc::new(meridian_chassis::SystemClock);
        let governance = meridian_governance::Governance::new(
            db.db.clone(),
            clock,
            root.governance,
            meridian_chassis::outbox::Waker::default(),
        )
        .unwrap();
        super::seed_governance(&governance).await.unwrap();
        super::seed_governance(&governance).await.unwrap();
        // What the other services publish reaches the ledger: an incident, a change.
        let incident = meridian_proto::resolution::v1::IncidentCreated::default().encode_to_vec();
        for (event_type, payload) in [
            ("resolution.incident.created", incident),
            ("control.change.submitted", Vec::new()),
        ] {
            let envelope = meridian_chassis::bus::Envelope {
                id: uuid::Uuid::now_v7(),
                event_type: event_type.to_owned(),
                source: "/meridian/test".to_owned(),
                subject: "x".to_owned(),
                time: meridian_chassis::Clock::now(&meridian_chassis::SystemClock),
                correlation_id: None,
                causation_id: None,
                actor: Some("alice".to_owned()),
                payload,
            };
            meridian_governance::events::apply(&governance, envelope)
                .await
                .unwrap();
        }
        let now = meridian_chassis::Clock::now(&meridian_chassis::SystemClock);
        let config = governance.config.evidence;
        let (report, readiness) = governance
            .db
            .run(move |conn| -> Result<_, meridian_chassis::db::DbError> {
                Ok((
                    meridian_governance::evidence::report(
                        conn,
                        config,
                        now - chrono::Duration::days(365),
                        now + chrono::Duration::seconds(1),
                    )?,
                    meridian_governance::evidence::readiness(conn, now)?,
                ))
            })
            .await
            .unwrap();
        let status = |clause: &str| {
            report
                .clauses
                .iter()
                .find(|c| c.clause == clause)
                .map(|c| c.status)
                .unwrap()
        };
        for met in [
            "4.1", "4.2", "4.3", "5.2", "5.3", "6.1", "6.2", "6.3", "7.2", "8.5.1.2", "8.6.1",
            "9.2",
        ] {
            assert_eq!(status(met), "met", "{met}");
        }
        for missing in ["5.1", "8.7.2", "9.3", "10.1", "10.2"] {
            assert_eq!(status(missing), "missing", "{missing}");
        }
        assert_eq!(
            report.met + report.stale + report.missing,
            report.clauses.len()
        );
        assert!(!readiness.ready);
        let check = |name: &str| {
            readiness
                .checks
                .iter()
                .find(|c| c.check.starts_with(name))
                .unwrap()
        };
        assert!(check("scope defined").ok && check("service management policy").ok);
        assert!(!check("information security policy").ok);
        assert!(!check("a management review").ok);
        let procedures = &check("a procedure approved").missing;
        assert!(
            procedures.iter().any(|m| m.starts_with("8.6.2"))
                && !procedures.iter().any(|m| m.starts_with("8.6.1 ")),
            "{procedures:?}"
        );
        let audit = check("one full internal audit cycle");
        assert!(
            audit.missing.contains(&"9.3".to_owned())
                && !audit.missing.contains(&"8.6.1".to_owned())
        );
    }
}
