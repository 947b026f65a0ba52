//! `meridian dev` and `meridian token`: everything in one process on SQLite with the in-process
//! bus, a per-data-folder secret for dev tokens, and a seeded demo organisation.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Envelope;
use meridian_proto::Message;
use meridian_proto::service_level::v1::{Criticality, ServicePublished, ServiceStatus};
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
    let db = data.join("resolution.db");
    let mail = data.join("mail");
    format!(
        "http:\n  bind: \"{bind}\"\ndatabase:\n  url: \"sqlite://{db}\"\n  pool_size: 8\n\
         bus:\n  kind: memory\nauth:\n  mode: dev\n  issuer: meridian-dev\n  audience: meridian\n  secret: \"{secret}\"\n\
         telemetry:\n  log_format: text\n  log_level: \"info,actix_server=warn\"\n\
         notifier:\n  public_url: \"http://{bind}\"\n  email:\n    transport: file\n    file_dir: \"{mail}\"\n    from: \"Meridian dev <meridian@example.org>\"\n",
        db = db.display(),
        mail = mail.display(),
    )
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
    let secret = dev_secret(data)?;
    let layer = dev_layer(data, "127.0.0.1:8080", &secret);
    let config = Config::load_with(file, &[&layer])?;
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
    seed_directory(&notifier).await?;
    seed(&runtime, &resolution).await?;
    seed_workflow(&workflow).await?;
    let services = app::Services {
        resolution: Some(resolution),
        workflow: Some(workflow),
        control: Some(control),
        notifier: Some(notifier),
    };
    let (address, server) = app::http_server(&runtime, services, bind)?;
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
        "\nMeridian dev is running (SQLite under {data}, in-process bus).\n\n  \
         API:      http://{address}/v1/incidents   http://{address}/v1/tasks?candidate=me\n  \
         OpenAPI:  http://{address}/v1/openapi.json\n  \
         Health:   http://{address}/readyz   Metrics: http://{address}/metrics\n  \
         Mail:     every e-mail (with its action links) is written to {mail}\n\n  \
         Token for alice (agent, incident-manager, change-manager, configuration-manager), valid 12 hours:\n\n{token}\n\n  \
         Try:  curl -H \"Authorization: Bearer $TOKEN\" http://{address}/v1/incidents\n  \
         Other users: meridian token --sub bob --roles requester --data {data}\n",
        data = data.display(),
        mail = data.join("mail").display(),
    );
    app::run_until_stopped(server).await
}

/// The demo organisation's people in the notifier's directory (e-mail, roles), once per data
/// folder.
async fn seed_directory(notifier: &meridian_notifier::Notifier) -> anyhow::Result<()> {
    use meridian_notifier::store::recipients::{self, RecipientRow};
    let now = notifier.clock.now().naive_utc();
    let people: [(&str, &str, &[&str]); 5] = [
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
        ("erin", "Erin Novak", &["cab"]),
    ];
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
            Ok(())
        })
        .await
}

/// A change waiting for its risk assessment (alice, a change manager, may take it), once per
/// data folder.
async fn seed_workflow(workflow: &meridian_workflow::Workflow) -> anyhow::Result<()> {
    use meridian_workflow::engine::Start;
    use meridian_workflow::store::instances;
    let now = workflow.clock.now();
    let registry = workflow.registry.clone();
    workflow
        .db
        .transaction(move |conn| -> anyhow::Result<()> {
            let Some(cab) = registry.newest(conn, "change-advisory-board")? else {
                return Ok(());
            };
            if !meridian_workflow::store::tasks::list(
                conn,
                &meridian_workflow::store::tasks::Filter {
                    limit: 1,
                    state: None,
                    ..Default::default()
                },
            )?
            .is_empty()
            {
                return Ok(());
            }
            let ctx = meridian_workflow::Workflow::context(&registry, "carol", now, None);
            let variables = serde_json::json!({
                "change": {"id": "CHG0001000", "title": "Upgrade the mail gateway", "service": "email"},
                "requester": "carol",
                "cab_members": ["bob", "dave", "erin"],
            });
            let request = Start {
                id: uuid::Uuid::now_v7(),
                business_key: "CHG0001000".to_owned(),
                initiator: "carol".to_owned(),
                variables: variables.as_object().cloned().unwrap_or_default(),
            };
            instances::start(conn, ctx, &cab, request, None).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(())
        })
        .await?;
    workflow.committed();
    Ok(())
}

/// The demo organisation: a small catalogue and a few incidents, once per data folder.
async fn seed(
    runtime: &app::Runtime,
    resolution: &meridian_resolution::Resolution,
) -> anyhow::Result<()> {
    let now = runtime.clock.now();
    let catalogue = [
        ("email", "E-mail", Criticality::Critical),
        ("payroll", "Payroll", Criticality::High),
        ("intranet", "Intranet", Criticality::Medium),
    ];
    let messages: Vec<Envelope> = catalogue
        .iter()
        .map(|(id, name, criticality)| Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: "service_level.service.published".to_owned(),
            source: "/meridian/service-level".to_owned(),
            subject: (*id).to_owned(),
            time: now,
            correlation_id: None,
            causation_id: None,
            actor: Some("system:seed".to_owned()),
            payload: ServicePublished {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                owner: "it-services".to_owned(),
                criticality: (*criticality).into(),
                status: ServiceStatus::Live.into(),
                revision: 1,
            }
            .encode_to_vec(),
        })
        .collect();
    runtime.bus.publish(&messages).await?;

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
