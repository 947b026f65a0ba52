//! Leader election for singleton work (the workflow timers, cluster discovery, the outbox
//! relay): on a cluster a coordination.k8s.io Lease, elsewhere a PostgreSQL session advisory
//! lock, and on SQLite (one process) always the leader.
//!
//! [`Elector::lead`] runs the work while this process leads and drops it (stopping it at its next
//! await) as soon as leadership is lost, then campaigns again. A Lease is renewed every third of
//! its duration; an API server that does not answer is tolerated for two thirds of the duration,
//! after which the work stops, before another replica may take the Lease over.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;
use crate::config::{LeaderElectionConfig, LeaderElectionKind};
use crate::db::Backend;

diesel::define_sql_function! {
    fn pg_try_advisory_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// A PostgreSQL session advisory lock held on a connection of its own (always held on SQLite).
pub struct AdvisoryLock {
    backend: Backend,
    url: SecretString,
    key: i64,
    connection: Option<PgConnection>,
    /// When the lock connection was last seen alive; it is probed at most once a second.
    checked: Option<std::time::Instant>,
}

impl AdvisoryLock {
    /// The lock `key` on the database at `url`.
    pub fn new(backend: Backend, url: SecretString, key: i64) -> Self {
        Self {
            backend,
            url,
            key,
            connection: None,
            checked: None,
        }
    }

    /// Whether this process holds the lock now, taking it when it is free.
    pub async fn hold(&mut self) -> bool {
        if self.backend == Backend::Sqlite {
            return true;
        }
        let fresh = self
            .checked
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
        if self.connection.is_some() && fresh {
            return true;
        }
        let url = self.url.clone();
        let key = self.key;
        let current = self.connection.take();
        let result = tokio::task::spawn_blocking(move || -> Option<PgConnection> {
            use diesel::connection::SimpleConnection;
            if let Some(mut conn) = current
                && conn.batch_execute("SELECT 1").is_ok()
            {
                return Some(conn);
            }
            let mut conn = PgConnection::establish(url.expose_secret()).ok()?;
            let held = diesel::select(pg_try_advisory_lock(key))
                .get_result::<bool>(&mut conn)
                .ok()?;
            held.then_some(conn)
        })
        .await
        .ok()
        .flatten();
        self.connection = result;
        self.checked = Some(std::time::Instant::now());
        self.connection.is_some()
    }
}

/// The advisory lock key of a named piece of singleton work (FNV-1a of the name).
pub fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("meridian:leader:{name}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A coordination.k8s.io Lease campaign: where, who, how long.
#[derive(Clone)]
pub struct LeaseElector {
    /// The API server.
    pub client: kube::Client,
    /// The namespace of the Leases (the pod's).
    pub namespace: String,
    /// This replica (the pod's name).
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub duration: Duration,
    /// Leases are `<prefix>-<name>`.
    pub prefix: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Who may run singleton work.
#[derive(Clone)]
pub enum Elector {
    /// This process alone (SQLite, tests).
    Solo,
    /// A PostgreSQL advisory lock per piece of work.
    Database(SecretString),
    /// A Lease per piece of work.
    Lease(LeaseElector),
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Solo => f.write_str("Elector::Solo"),
            Self::Database(_) => f.write_str("Elector::Database"),
            Self::Lease(l) => write!(
                f,
                "Elector::Lease({}/{}, {})",
                l.namespace, l.prefix, l.identity
            ),
        }
    }
}

impl Elector {
    /// The elector `config` asks for, on a database of `backend` at `url`. A Lease needs the
    /// in-cluster configuration (or a kubeconfig), the pod's namespace and name.
    ///
    /// # Errors
    /// No Kubernetes configuration can be found.
    pub async fn from_config(
        config: &LeaderElectionConfig,
        backend: Backend,
        url: &SecretString,
        pod: Option<(String, String)>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        match (config.kind, backend) {
            (LeaderElectionKind::Database, Backend::Sqlite) => Ok(Self::Solo),
            (LeaderElectionKind::Database, Backend::Postgres) => Ok(Self::Database(url.clone())),
            (LeaderElectionKind::Lease, _) => {
                let client = kube::Client::try_default().await.map_err(|e| {
                    anyhow::anyhow!(
                        "leader_election.kind lease needs a Kubernetes configuration: {e}"
                    )
                })?;
                let (namespace, identity) = pod.unwrap_or_else(|| {
                    (
                        client.default_namespace().to_owned(),
                        format!("meridian-{}", uuid::Uuid::new_v4()),
                    )
                });
                Ok(Self::Lease(LeaseElector {
                    client,
                    namespace,
                    identity,
                    duration: Duration::from_secs(config.lease_duration_seconds),
                    prefix: config.lease_prefix.clone(),
                    clock,
                }))
            }
        }
    }

    /// A campaign for the work called `name`.
    pub fn campaign(&self, name: &str) -> Campaign {
        match self {
            Self::Solo => Campaign::Solo,
            Self::Database(url) => Campaign::Database(AdvisoryLock::new(
                Backend::Postgres,
                url.clone(),
                lock_key(name),
            )),
            Self::Lease(elector) => Campaign::Lease(Box::new(LeaseCampaign {
                api: Api::namespaced(elector.client.clone(), &elector.namespace),
                name: format!("{}-{name}", elector.prefix),
                elector: elector.clone(),
                renewed: None,
            })),
        }
    }

    /// How often leadership is checked (and a Lease renewed).
    fn period(&self) -> Duration {
        match self {
            Self::Solo => Duration::from_secs(3600),
            Self::Database(_) => Duration::from_secs(2),
            Self::Lease(elector) => elector.duration / 3,
        }
    }

    /// Runs `work` whenever this process leads `name`, stopping it when leadership is lost;
    /// never returns.
    pub async fn lead<F, Fut>(&self, name: &str, mut work: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut campaign = self.campaign(name);
        let period = self.period();
        loop {
            if !campaign.hold().await {
                tokio::time::sleep(period).await;
                continue;
            }
            tracing::info!(work = name, "leading");
            let running = work();
            tokio::pin!(running);
            loop {
                tokio::select! {
                    () = &mut running => {
                        tracing::warn!(work = name, "singleton work ended; campaigning again");
                        break;
                    }
                    () = tokio::time::sleep(period) => {
                        if !campaign.hold().await {
                            tracing::warn!(work = name, "leadership lost; the work stops");
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// One campaign for one piece of work.
pub enum Campaign {
    /// Always leading.
    Solo,
    /// A database lock.
    Database(AdvisoryLock),
    /// A Lease.
    Lease(Box<LeaseCampaign>),
}

impl Campaign {
    /// Whether this process leads now (taking or renewing what it needs).
    pub async fn hold(&mut self) -> bool {
        match self {
            Self::Solo => true,
            Self::Database(lock) => lock.hold().await,
            Self::Lease(lease) => lease.hold().await,
        }
    }
}

/// A Lease campaign.
pub struct LeaseCampaign {
    api: Api<Lease>,
    name: String,
    elector: LeaseElector,
    /// When this replica last renewed (while it leads).
    renewed: Option<chrono::DateTime<chrono::Utc>>,
}

fn micro(at: chrono::DateTime<chrono::Utc>) -> Option<MicroTime> {
    k8s_openapi::jiff::Timestamp::from_microsecond(at.timestamp_micros())
        .ok()
        .map(MicroTime)
}

fn conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

impl LeaseCampaign {
    /// The Lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.elector.duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// An API server that fails is tolerated while the last renewal is fresh.
    fn tolerate(&mut self, now: chrono::DateTime<chrono::Utc>, error: &kube::Error) -> bool {
        let deadline = chrono::Duration::from_std(self.elector.duration * 2 / 3)
            .unwrap_or(chrono::Duration::seconds(10));
        let fresh = self.renewed.is_some_and(|at| now - at < deadline);
        tracing::warn!(lease = self.name, %error, still_leading = fresh, "the Lease could not be renewed");
        if !fresh {
            self.renewed = None;
        }
        fresh
    }

    fn won(&mut self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.renewed = Some(now);
        true
    }

    fn lost(&mut self) -> bool {
        self.renewed = None;
        false
    }

    /// Takes, renews or fails to get the Lease.
    pub async fn hold(&mut self) -> bool {
        let now = self.elector.clock.now();
        let me = self.elector.identity.clone();
        let current = match self.api.get_opt(&self.name).await {
            Ok(current) => current,
            Err(error) => return self.tolerate(now, &error),
        };
        let Some(mut lease) = current else {
            let fresh = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(self.seconds()),
                    acquire_time: micro(now),
                    renew_time: micro(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &fresh).await {
                Ok(_) => self.won(now),
                Err(error) if conflict(&error) => self.lost(),
                Err(error) => self.tolerate(now, &error),
            };
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != me {
            let renewed = spec
                .renew_time
                .as_ref()
                .map(|t| t.0.as_microsecond())
                .unwrap_or(i64::MIN);
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(self.seconds()));
            let expired = holder.is_empty()
                || renewed.saturating_add(duration.saturating_mul(1_000_000))
                    < now.timestamp_micros();
            if !expired {
                return self.lost();
            }
            spec.holder_identity = Some(me);
            spec.acquire_time = micro(now);
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            tracing::info!(
                lease = self.name,
                from = holder,
                "taking over an expired Lease"
            );
        }
        spec.renew_time = micro(now);
        spec.lease_duration_seconds = Some(self.seconds());
        lease.spec = Some(spec);
        // The resourceVersion in the metadata makes the update conditional.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => self.won(now),
            Err(error) if conflict(&error) => self.lost(),
            Err(error) => self.tolerate(now, &error),
        }
    }
}

#[cfg(test)]
#[path = "leader_tests.rs"]
mod tests;
