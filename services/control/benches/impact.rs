//! `make bench`: impact analysis on PostgreSQL over a generated graph of 100,000 CIs and
//! 300,000 relations (services → applications → servers, databases and networks, each CI
//! depending on three of the layer below), both directions, depth 1 to 5, from 500 random
//! starts each. Latency is measured around the whole analysis (every query and the CIs loaded).
//!
//! Arguments: the database URL (an empty database), then the results file.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::io::Write;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use meridian_chassis::db::{AnyConnection, Db, DbError};
use meridian_chassis::{Clock, SystemClock};
use meridian_control::store::impact::{self, Direction};

const CIS: i64 = 100_000;
const PER_CI: i64 = 3;
const STARTS: usize = 500;

/// Layers by id range: 1–2,000 services, –20,000 applications, –60,000 servers and workloads,
/// –100,000 databases, networks and licences. Each CI above the last layer depends on three CIs
/// of the layer below.
fn generate(conn: &mut AnyConnection) -> QueryResult<()> {
    let AnyConnection::Postgresql(pg) = conn else {
        panic!("the impact benchmark runs on PostgreSQL");
    };
    diesel::sql_query(format!(
        "INSERT INTO cis (id, ci_type, name, owner, status, environment, criticality, attributes, created_at, updated_at, version) \
         SELECT 'ci-' || g, \
                CASE WHEN g <= 2000 THEN 'service' WHEN g <= 20000 THEN 'application' WHEN g <= 60000 THEN 'server' ELSE 'database' END, \
                'ci ' || g, 'owner-' || (g % 500), 'in_service', 'production', 'medium', '{{}}', now(), now(), 1 \
         FROM generate_series(1, {CIS}) AS g"
    ))
    .execute(pg)?;
    // Child g (in layer L) depends on three CIs of layer L+1, spread by multiplicative hashing.
    diesel::sql_query(format!(
        "INSERT INTO ci_relations (id, source, kind, target, created_by, created_at) \
         SELECT 'rel-' || g || '-' || k, 'ci-' || g, 'depends_on', 'ci-' || (lo + ((g * 2654435761 + k * 40503) % (hi - lo + 1))), 'bench', now() \
         FROM (SELECT g, k, \
                 CASE WHEN g <= 2000 THEN 2001 WHEN g <= 20000 THEN 20001 WHEN g <= 60000 THEN 60001 ELSE 60001 END AS lo, \
                 CASE WHEN g <= 2000 THEN 20000 WHEN g <= 20000 THEN 60000 WHEN g <= 60000 THEN {CIS} ELSE {CIS} END AS hi \
               FROM generate_series(1, {CIS}) AS g, generate_series(1, {PER_CI}) AS k) AS pairs \
         WHERE NOT (g > 60000 AND lo = 60001 AND (lo + ((g * 2654435761 + k * 40503) % (hi - lo + 1))) = g) \
         ON CONFLICT DO NOTHING"
    ))
    .execute(pg)?;
    diesel::sql_query("ANALYZE cis").execute(pg)?;
    diesel::sql_query("ANALYZE ci_relations").execute(pg)?;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short list"
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
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
        let db = Db::connect(&url, 2, Duration::from_secs(5)).unwrap();
        db.migrate(meridian_control::store::MIGRATIONS).await.unwrap();
        db.run(|conn| generate(conn).map_err(DbError::from)).await.unwrap();
        let (cis, relations): (i64, i64) = db
            .run(|conn| -> Result<(i64, i64), DbError> {
                use meridian_control::store::schema::{ci_relations, cis};
                Ok((cis::table.count().get_result(conn)?, ci_relations::table.count().get_result(conn)?))
            })
            .await
            .unwrap();
        let mut rows = Vec::new();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for (direction, name, range) in [
            (Direction::Up, "up (from servers and below)", (20_001_u64, 100_000_u64)),
            (Direction::Down, "down (from services and applications)", (1, 20_000)),
        ] {
            for depth in [1_usize, 3, 5] {
                let mut timings = Vec::with_capacity(STARTS);
                let mut reached = 0_usize;
                for _ in 0..STARTS {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    let start = format!("ci-{}", range.0 + (seed >> 33) % (range.1 - range.0 + 1));
                    let began = Instant::now();
                    let found = db
                        .run(move |conn| impact::analyse(conn, &start, direction, depth).map_err(DbError::from))
                        .await
                        .unwrap();
                    timings.push(began.elapsed());
                    reached += found.len();
                }
                timings.sort();
                rows.push(format!(
                    "| {name} | {depth} | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
                    percentile(&timings, 0.5).as_secs_f64() * 1e3,
                    percentile(&timings, 0.99).as_secs_f64() * 1e3,
                    timings.last().unwrap().as_secs_f64() * 1e3,
                    reached / STARTS,
                ));
            }
        }
        format!(
            "# Impact analysis benchmark ({})\n\n\
             PostgreSQL on this machine, {cis} CIs and {relations} relations in four layers, {STARTS} random\n\
             starts per line, release build; latency of the whole analysis (all queries, CIs loaded).\n\n\
             | direction | depth | p50 | p99 | max | CIs reached (mean) |\n|---|---|---|---|---|---|\n{}\n",
            SystemClock.now().format("%Y-%m-%dT%H:%MZ"),
            rows.join("\n"),
        )
    });
    if let Some(path) = out {
        std::fs::File::create(path)
            .unwrap()
            .write_all(report.as_bytes())
            .unwrap();
    }
    print!("{report}");
}
