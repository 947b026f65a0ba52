//! `make bench`: one million open SLA clocks on PostgreSQL, due times spread over a day, and a
//! thousand of them due at the same second. Measured: how long the breach scheduler takes, at
//! that second, to find every clock due and raise each breach (its record, its audit row and its
//! `service_level.sla.breached` event, in the same transactions as in production), and the memory
//! used: this process's peak resident set, and the clocks table with its indexes on disk.
//!
//! Arguments: the database URL (an empty database), then the results file.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use meridian_chassis::clock::ManualClock;
use meridian_chassis::db::{AnyConnection, Db, DbError};
use meridian_chassis::outbox::Waker;
use meridian_service_level::{ServiceLevel, ServiceLevelConfig};

const CLOCKS: i64 = 1_000_000;
const DUE_TOGETHER: i64 = 1_000;

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

fn generate(conn: &mut AnyConnection, due: DateTime<Utc>) -> QueryResult<()> {
    let AnyConnection::Postgresql(pg) = conn else {
        panic!("the clock benchmark runs on PostgreSQL");
    };
    let at = due.format("%Y-%m-%d %H:%M:%S").to_string();
    diesel::sql_query(
        "INSERT INTO sl_calendars (id, name, timezone, week, holidays, updated_at) \
         VALUES ('always', '24x7', 'UTC', '[]', '[]', now())",
    )
    .execute(pg)?;
    diesel::sql_query(
        "INSERT INTO sl_agreements (id, kind, name, service, customer, group_name, calendar_id, targets, warning_percent, \
         pause_reasons, workload_limit, exceptions, active, created_at, updated_at) \
         VALUES ('bench-sla', 'sla', 'Bench SLA', 'email', NULL, NULL, 'always', '{}', 75, '[]', '', '', true, now(), now())",
    )
    .execute(pg)?;
    // The first DUE_TOGETHER clocks are due exactly at `due`; the others later that day.
    diesel::sql_query(format!(
        "INSERT INTO sl_clocks (id, ticket_id, number, agreement_id, metric, service, priority, target_seconds, \
         elapsed_seconds, stage, due_at, warn_at, stopped_at, warned, breached, next_check, computed_at) \
         SELECT 'clock-' || g, 'ticket-' || g, 'INC' || g, 'bench-sla', 'resolution', 'email', 3, 28800, 0, 'running', \
                d, d - interval '2 hours', NULL, true, false, d, now() \
         FROM (SELECT g, CASE WHEN g <= {DUE_TOGETHER} THEN timestamp '{at}' \
                              ELSE timestamp '{at}' + (1 + g % 86399) * interval '1 second' END AS d \
               FROM generate_series(1, {CLOCKS}) AS g) AS spread"
    ))
    .execute(pg)?;
    diesel::sql_query("ANALYZE sl_clocks").execute(pg)?;
    Ok(())
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let url = args.next().expect("the database URL");
    let out = args.next();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async move {
        let db = Db::connect(&url, 4, Duration::from_secs(5)).unwrap();
        db.migrate(meridian_service_level::store::MIGRATIONS).await.unwrap();
        let due = DateTime::parse_from_rfc3339("2026-11-26T18:00:00Z").unwrap().with_timezone(&Utc);
        let loaded = Instant::now();
        db.run(move |conn| generate(conn, due).map_err(DbError::from)).await.unwrap();
        let load_time = loaded.elapsed();
        let clock = ManualClock::at(due - chrono::Duration::seconds(1));
        let config = ServiceLevelConfig { scheduler_poll_ms: 250, scheduler_batch: 1000, request_priority: 4 };
        let svc = ServiceLevel::new(db.clone(), Arc::new(clock.clone()), config, Waker::default());
        // A second before: nothing is due, and finding so costs one index probe.
        let idle = Instant::now();
        let none = meridian_service_level::scheduler::tick(&svc).await.unwrap();
        let idle_time = idle.elapsed();
        assert_eq!(none, 0);
        clock.advance(chrono::Duration::seconds(1));
        let started = Instant::now();
        let mut raised = 0;
        loop {
            let n = meridian_service_level::scheduler::tick(&svc).await.unwrap();
            if n == 0 {
                break;
            }
            raised += n;
        }
        let all_raised = started.elapsed();
        let (breaches, events, table): (i64, i64, i64) = db
            .run(|conn| -> Result<(i64, i64, i64), DbError> {
                use meridian_service_level::store::schema::sl_breaches;
                let breaches = sl_breaches::table.count().get_result(conn)?;
                let events = meridian_chassis::schema::outbox::table.count().get_result(conn)?;
                let size: Size = diesel::sql_query("SELECT pg_total_relation_size('sl_clocks') AS bytes").get_result(conn)?;
                Ok((breaches, events, size.bytes))
            })
            .await
            .unwrap();
        assert_eq!((raised, breaches, events), (usize::try_from(DUE_TOGETHER).unwrap(), DUE_TOGETHER, DUE_TOGETHER));
        format!(
            "# SLA breach detection: {CLOCKS} open clocks\n\n\
             PostgreSQL on this machine; the scheduler's own code (`scheduler::tick`), 1,000 clocks per \
             transaction; {DUE_TOGETHER} clocks due at the same second, the rest spread over the next 24 hours.\n\n\
             | figure | measured |\n|---|---|\n\
             | open clocks | {CLOCKS} |\n\
             | a look with nothing due (the scheduler polls every 250 ms) | {idle:.2} ms |\n\
             | finding and raising all {DUE_TOGETHER} breaches due at that second | {all:.1} ms |\n\
             | per breach (record, audit row, event) | {per:.3} ms |\n\
             | breach records / events written | {breaches} / {events} |\n\
             | this process's peak resident memory | {rss} MiB |\n\
             | the clocks table with its indexes on disk | {table} MiB |\n\
             | generating the clocks (SQL) | {load:.1} s |\n",
            idle = idle_time.as_secs_f64() * 1000.0,
            all = all_raised.as_secs_f64() * 1000.0,
            per = all_raised.as_secs_f64() * 1000.0 / f64::from(u32::try_from(DUE_TOGETHER).unwrap()),
            rss = rss_kib("VmHWM:") / 1024,
            table = table / (1024 * 1024),
            load = load_time.as_secs_f64(),
        )
    });
    print!("{report}");
    if let Some(out) = out {
        std::fs::File::create(out)
            .unwrap()
            .write_all(report.as_bytes())
            .unwrap();
    }
}
