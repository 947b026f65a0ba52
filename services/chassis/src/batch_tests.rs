//! Group commit on both backends: every request answered with its own result, and a bad request
//! failing alone.

use diesel::prelude::*;

use super::*;
use crate::audit;
use crate::db::CHASSIS_MIGRATIONS;
use crate::schema::audit_log;
use crate::testing::{BACKENDS, TestDb};
use crate::{Clock, SystemClock};

/// Writes one audit row per request, `entity_id` = the request; `"bad"` makes the batch fail
/// after its rows were written, as a constraint would.
fn write(conn: &mut AnyConnection, items: &[String]) -> Result<Vec<String>, DbError> {
    let now = SystemClock.now();
    audit::record_all(
        conn,
        items.iter().map(|item| audit::Entry::<(), &str> {
            actor: "tester",
            action: "thing.created",
            entity_type: "thing",
            entity_id: item,
            before: None,
            after: Some(&"{}"),
            at: now,
        }),
    )?;
    if items.iter().any(|item| item == "bad") {
        return Err(DbError::Unavailable("bad request".to_owned()));
    }
    Ok(items.iter().map(|item| format!("stored {item}")).collect())
}

fn stored(conn: &mut AnyConnection) -> Vec<String> {
    let mut ids: Vec<String> = audit_log::table
        .select(audit_log::entity_id)
        .load(conn)
        .unwrap();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_each_answered_and_all_committed() {
    for backend in BACKENDS {
        let test = TestDb::new(backend, CHASSIS_MIGRATIONS).await;
        let batcher = Batcher::new("test-batch", test.db.clone(), write);
        let requests = (0..300).map(|n| {
            let batcher = batcher.clone();
            tokio::spawn(async move { (n, batcher.submit(format!("{n:03}")).await) })
        });
        for request in futures_util::future::join_all(requests).await {
            let (n, answer) = request.unwrap();
            assert_eq!(answer.unwrap(), format!("stored {n:03}"), "{backend:?}");
        }
        let expected: Vec<String> = (0..300).map(|n| format!("{n:03}")).collect();
        let rows = test.db.run(|conn| Ok::<_, DbError>(stored(conn))).await;
        assert_eq!(rows.unwrap(), expected, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_fails_alone_and_leaves_nothing() {
    for backend in BACKENDS {
        let test = TestDb::new(backend, CHASSIS_MIGRATIONS).await;
        let db = test.db.clone();
        let items: Vec<String> = ["a", "bad", "c"].map(str::to_owned).to_vec();
        let answers = tokio::task::spawn_blocking(move || commit(&db, &items, &write))
            .await
            .unwrap();
        let answers: Vec<Result<String, String>> = answers
            .into_iter()
            .map(|answer| answer.map_err(|error| error.to_string()))
            .collect();
        assert_eq!(
            answers,
            vec![
                Ok("stored a".to_owned()),
                Err("database unavailable: bad request".to_owned()),
                Ok("stored c".to_owned()),
            ],
            "{backend:?}"
        );
        let rows = test.db.run(|conn| Ok::<_, DbError>(stored(conn))).await;
        assert_eq!(rows.unwrap(), ["a", "c"], "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_an_error_for_each_request() {
    let db = Db::connect(
        "postgres://postgres@127.0.0.1:1/nowhere",
        1,
        std::time::Duration::from_millis(200),
    )
    .unwrap();
    let batcher = Batcher::new("test-down", db, write);
    let answer = batcher.submit("x".to_owned()).await;
    assert!(matches!(answer, Err(DbError::Unavailable(_))), "{answer:?}");
}

/// A request that loses a deadlock twice is tried again and committed, once; one that keeps
/// losing gets its error after the retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_losing_to_contention_is_tried_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let test = TestDb::new(crate::testing::Backend::Sqlite, CHASSIS_MIGRATIONS).await;
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = tries.clone();
    let batcher = Batcher::new(
        "test-contention",
        test.db.clone(),
        move |conn: &mut AnyConnection, items: &[String]| {
            let deadlock = || {
                DbError::Query(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::Unknown,
                    Box::new("deadlock detected".to_owned()),
                ))
            };
            if items.iter().any(|i| i == "always") {
                return Err(deadlock());
            }
            if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(deadlock());
            }
            write(conn, items)
        },
    );
    assert_eq!(
        batcher.submit("lucky".to_owned()).await.unwrap(),
        "stored lucky"
    );
    assert_eq!(
        tries.load(Ordering::SeqCst),
        3,
        "two lost, the third committed"
    );
    let rows = test
        .db
        .run(|conn| Ok::<_, DbError>(stored(conn)))
        .await
        .unwrap();
    assert_eq!(rows, ["lucky"]);
    let error = batcher.submit("always".to_owned()).await.unwrap_err();
    assert!(error.transient(), "{error}");
}
