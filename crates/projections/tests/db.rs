//! The connection pool: connections come back without a round trip, yet a dropped
//! transaction's rollback reaches the server at once, a task waiting for a connection gets
//! one that comes back, a dead connection is replaced, and closing waits only for the
//! connections still in use.

use std::time::Duration;

use carrot_projections::postgres::Db;
use carrot_projections::testing::test_database;
use sqlx::postgres::PgPoolOptions;

async fn pool_of(url: &str, connections: u32) -> Db {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .expect("connecting");
    Db::new(pool)
}

async fn backend_pid(db: &Db) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(db)
        .await
        .expect("asking the backend's pid")
}

#[tokio::test]
async fn statements_on_the_pool_reuse_one_connection() {
    let test = test_database().await;
    let db = pool_of(&test.url, 4).await;
    let first = backend_pid(&db).await;
    for _ in 0..5 {
        assert_eq!(backend_pid(&db).await, first);
    }
    let rows: Vec<i32> = sqlx::query_scalar("SELECT generate_series(1, 3)")
        .fetch_all(&db)
        .await
        .expect("several rows");
    assert_eq!(rows, [1, 2, 3]);
    let none: Option<i32> = sqlx::query_scalar("SELECT 1 WHERE false")
        .fetch_optional(&db)
        .await
        .expect("no row");
    assert_eq!(none, None);
}

#[tokio::test]
async fn a_dropped_transaction_releases_its_locks_at_once() {
    let test = test_database().await;
    let db = pool_of(&test.url, 2).await;
    sqlx::query("CREATE TABLE held (id int PRIMARY KEY)")
        .execute(&db)
        .await
        .expect("a table");
    {
        let mut tx = db.begin().await.expect("a transaction");
        sqlx::query("INSERT INTO held VALUES (1)")
            .execute(&mut *tx)
            .await
            .expect("a row, locked until the transaction ends");
        // Dropped here without a commit.
    }
    let other = test.pool.begin().await;
    let mut other = other.expect("another transaction");
    sqlx::query("SET LOCAL lock_timeout = '2s'")
        .execute(&mut *other)
        .await
        .expect("a lock timeout");
    sqlx::query("INSERT INTO held VALUES (1)")
        .execute(&mut *other)
        .await
        .expect("the first insert was rolled back, so its key is free and unlocked");
    other.commit().await.expect("commit");
}

#[tokio::test]
async fn a_task_waiting_for_a_connection_gets_the_one_that_comes_back() {
    let test = test_database().await;
    let db = pool_of(&test.url, 1).await;
    let held = db.acquire().await.expect("the only connection");
    let waiter = tokio::spawn({
        let db = db.clone();
        async move { backend_pid(&db).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(held);
    let served = waiter.await.expect("the waiting task");
    assert!(served > 0);
}

#[tokio::test]
async fn a_connection_that_died_while_idle_is_replaced() {
    let test = test_database().await;
    let db = pool_of(&test.url, 2).await;
    let pid = backend_pid(&db).await;
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&test.pool)
        .await
        .expect("terminating the cached connection's backend");
    assert!(killed);
    // Idle for longer than a cached connection goes unchecked.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let next = backend_pid(&db).await;
    assert_ne!(next, pid);
}

#[tokio::test]
async fn a_connection_handed_back_while_the_pool_closes_does_not_keep_it_waiting() {
    let test = test_database().await;
    let db = pool_of(&test.url, 4).await;
    // A task still using a connection (a notifier's last NOTIFY) as a command ends.
    let conn = db.acquire().await.expect("a connection");
    let closing = tokio::spawn({
        let db = db.clone();
        async move { db.close().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(conn);
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .expect("close waited for a connection kept in the cache")
        .expect("closing");
}
