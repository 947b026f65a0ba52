//! Group commit: many concurrent writes of one kind committed in one transaction.
//!
//! Under load, a hot write path (creating incidents, say) pays for its round trips and its
//! commit more than for its work. A [`Batcher`] queues the requests; each of its lanes (threads)
//! takes what is waiting, up to [`MAX_BATCH`], and runs the batch function once on all of it in
//! one transaction, so the batch shares its statements (multi-row inserts) and its fsync. Alone,
//! a request is a batch of one and waits for nobody.
//!
//! A batch is all or nothing. When it fails, each of its requests runs again in a transaction of
//! its own, so one bad request gets its own error and does not fail its neighbours; the batch
//! function must therefore be safe to run twice on the same input (it is: nothing of a failed
//! transaction remains). A request that fails only because of concurrent transactions (a
//! deadlock between lanes, a serialisation failure: [`Transient`]) is tried again, a few times,
//! before its error is answered.

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};

use diesel::Connection;
use tokio::sync::oneshot;

use crate::db::{AnyConnection, Backend, Db, DbError};

/// An error that may not happen when the same work is tried again (contention between
/// transactions).
pub trait Transient {
    /// Whether trying again may succeed.
    fn transient(&self) -> bool;
}

impl Transient for crate::Problem {
    fn transient(&self) -> bool {
        self.code() == crate::problem::codes::UNAVAILABLE
    }
}

impl Transient for DbError {
    fn transient(&self) -> bool {
        match self {
            DbError::Unavailable(_) => false,
            DbError::Query(error) => crate::db::contention(error),
        }
    }
}

/// How often a request failing with a [`Transient`] error is tried alone again.
const RETRIES: usize = 3;

/// The most requests one transaction takes.
pub const MAX_BATCH: usize = 64;

/// Lanes on PostgreSQL (SQLite has one writer, so one lane).
const POSTGRES_LANES: usize = 4;

type Reply<O, E> = oneshot::Sender<Result<O, E>>;
type Job<I, O, E> = (I, Reply<O, E>);
type BatchFn<I, O, E> = dyn Fn(&mut AnyConnection, &[I]) -> Result<Vec<O>, E> + Send + Sync;

/// Queues requests of type `I` and answers each with its `O` once its batch committed.
pub struct Batcher<I, O, E> {
    queue: Sender<Job<I, O, E>>,
}

impl<I, O, E> Clone for Batcher<I, O, E> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I, O, E> std::fmt::Debug for Batcher<I, O, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<I, O, E> Batcher<I, O, E>
where
    I: Send + 'static,
    O: Send + 'static,
    E: From<DbError> + From<diesel::result::Error> + Transient + Send + 'static,
{
    /// Starts the lanes (named `name`) on `db`. `batch` gets the requests in order and must
    /// answer each, in the same order. The lanes end when the last clone of the batcher is dropped.
    pub fn new<F>(name: &str, db: Db, batch: F) -> Self
    where
        F: Fn(&mut AnyConnection, &[I]) -> Result<Vec<O>, E> + Send + Sync + 'static,
    {
        let (queue, jobs) = channel();
        let jobs = Arc::new(Mutex::new(jobs));
        let batch: Arc<BatchFn<I, O, E>> = Arc::new(batch);
        let lanes = match db.backend() {
            Backend::Postgres => POSTGRES_LANES,
            Backend::Sqlite => 1,
        };
        for lane in 0..lanes {
            let (db, jobs, batch) = (db.clone(), jobs.clone(), batch.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{lane}"))
                .stack_size(256 * 1024)
                .spawn(move || run_lane(&db, &jobs, batch.as_ref()));
            // With no lane at all the queue has no reader, and every submit is refused.
            if let Err(error) = spawned {
                tracing::error!(%error, name, lane, "a group-commit lane could not start");
            }
        }
        Self { queue }
    }

    /// Submits `item` and waits until its batch committed (or failed).
    ///
    /// # Errors
    /// The batch function's error for this item, or [`DbError::Unavailable`].
    pub async fn submit(&self, item: I) -> Result<O, E> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((item, reply))
            .map_err(|_| E::from(DbError::Unavailable("the batcher has stopped".to_owned())))?;
        answer.await.map_err(|_| {
            E::from(DbError::Unavailable(
                "the batcher dropped the request".to_owned(),
            ))
        })?
    }
}

/// Takes the next batch: waits for one request, then takes what else is already waiting.
fn next_batch<J>(jobs: &Mutex<Receiver<J>>) -> Option<Vec<J>> {
    let jobs = jobs.lock().unwrap_or_else(PoisonError::into_inner);
    let first = jobs.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    Some(batch)
}

fn run_lane<I, O, E>(db: &Db, jobs: &Mutex<Receiver<Job<I, O, E>>>, batch: &BatchFn<I, O, E>)
where
    E: From<DbError> + From<diesel::result::Error> + Transient,
{
    while let Some(jobs) = next_batch(jobs) {
        let (items, replies): (Vec<I>, Vec<Reply<O, E>>) = jobs.into_iter().unzip();
        for (reply, result) in replies.into_iter().zip(commit(db, &items, batch)) {
            // The requester may have gone (a closed connection): its write stands regardless.
            let _ = reply.send(result);
        }
    }
}

/// Commits `items` in one transaction, or each alone when that fails; one result per item.
fn commit<I, O, E>(db: &Db, items: &[I], batch: &BatchFn<I, O, E>) -> Vec<Result<O, E>>
where
    E: From<DbError> + From<diesel::result::Error> + Transient,
{
    let _writer = db.writer_lock_blocking();
    let mut conn = match db.checkout() {
        Ok(conn) => conn,
        Err(error) => {
            let reason = error.to_string();
            return items
                .iter()
                .map(|_| Err(E::from(DbError::Unavailable(reason.clone()))))
                .collect();
        }
    };
    let run = |conn: &mut AnyConnection, items: &[I]| {
        conn.transaction(|conn| {
            let out = batch(conn, items)?;
            db.inject("commit")?;
            if out.len() == items.len() {
                Ok(out)
            } else {
                Err(E::from(DbError::Unavailable(format!(
                    "a batch of {} gave {} answers",
                    items.len(),
                    out.len()
                ))))
            }
        })
    };
    let alone = |conn: &mut AnyConnection, item: &I| {
        let mut tries = 0;
        loop {
            match run(conn, std::slice::from_ref(item)) {
                Err(error) if error.transient() && tries < RETRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5 * (1 << tries)));
                }
                other => return other.map(|mut out| out.remove(0)),
            }
        }
    };
    match run(&mut conn, items) {
        Ok(out) => out.into_iter().map(Ok).collect(),
        Err(error) if items.len() == 1 && !error.transient() => vec![Err(error)],
        Err(_) => items.iter().map(|item| alone(&mut conn, item)).collect(),
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
