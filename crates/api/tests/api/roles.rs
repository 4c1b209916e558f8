//! Migrations as a step of their own, and two database roles (issue 16): serving processes
//! and operator commands never change the schema unless told to; `carrot migrate` (the
//! owner) grants the service's role rows and nothing else, and the service runs whole
//! trades as that role, through a rebuild the owner makes meanwhile.

use carrot_projections::postgres::{connect, ensure_database, prepare, Schema};
use carrot_projections::replay;
use carrot_projections::testing::{test_database, TestDatabase};

use crate::helpers::{carrot_cli, spawn_app_on, test_settings};

/// `url` with another user and password, or another database.
fn with(url: &str, user: Option<(&str, &str)>, database: Option<&str>) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    if let Some((name, password)) = user {
        url.set_username(name).unwrap();
        url.set_password(Some(password)).unwrap();
    }
    if let Some(database) = database {
        url.set_path(&format!("/{database}"));
    }
    url.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_as_a_role_that_reads_and_writes_rows_and_nothing_else() {
    let owner = test_database().await;
    let role = format!(
        "carrot_app_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    sqlx::query(&format!("CREATE ROLE {role} LOGIN PASSWORD 'app-password'"))
        .execute(&owner.pool)
        .await
        .unwrap();
    let granted = carrot_cli(&["migrate", "--app-role", &role], &owner.url);
    assert!(granted.status.success(), "{granted:?}");
    assert!(String::from_utf8_lossy(&granted.stderr).contains("may read and write rows"));
    let missing = carrot_cli(&["migrate", "--app-role", "nobody_at_all"], &owner.url);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("there is no role"));

    let url = with(&owner.url, Some((&role, "app-password")), None);
    let pool = connect(&url, 20).await.unwrap();
    prepare(&pool, Schema::Require).await.unwrap();
    // It cannot change the schema, nor rewrite the log, by mistake or by attack.
    for statement in [
        "CREATE TABLE public.intruder (x int)",
        "DROP TABLE public.events",
        "ALTER TABLE catalog.listings ADD COLUMN x int",
        "UPDATE public.events SET payload = payload",
        "DELETE FROM public.events",
        "DELETE FROM public._sqlx_migrations",
    ] {
        assert!(
            sqlx::query(statement).execute(&pool).await.is_err(),
            "{statement}"
        );
    }
    assert!(
        prepare(&pool, Schema::Migrate).await.is_err(),
        "the service's role cannot migrate"
    );

    // Whole trades as that role, settlement included.
    let db = TestDatabase {
        pool,
        name: owner.name.clone(),
        url,
    };
    let gateway = std::sync::Arc::new(carrot_api::payment::SimulatedGateway::new(
        carrot_api::payment::SimulationProfile::default(),
    ));
    let mut settings = test_settings();
    settings.gateway = gateway.clone();
    let app = spawn_app_on(settings, gateway, db).await;
    let sold = app.pending_deal("Tent", 80_000).await;
    app.act_ok(&sold.seller, &sold.placed.request_id, "accept", "accepted")
        .await;
    app.act_ok(
        &sold.buyer,
        &sold.placed.request_id,
        "complete",
        "completed",
    )
    .await;
    app.wait_payment(&sold.buyer, &sold.placed.payment_id, "paid_out")
        .await;
    app.settle().await;

    // The owner rebuilds a view while the service runs: the swapped-in schema is the
    // service's to read and write (default privileges), and trades go on.
    let views = carrot_projections::views::all();
    let mypage = views.iter().find(|v| v.name() == "mypage").unwrap();
    replay::rebuild(&owner.pool, mypage.as_ref(), &mut |_| {})
        .await
        .unwrap();
    let refunded = app.pending_deal("Stove", 20_000).await;
    app.act_ok(
        &refunded.seller,
        &refunded.placed.request_id,
        "reject",
        "rejected",
    )
    .await;
    app.wait_payment(&refunded.buyer, &refunded.placed.payment_id, "refunded")
        .await;
    app.settle().await;
    let page = app.read(&refunded.buyer, "/mypage/purchases").await;
    assert!(
        page.to_string().contains(&refunded.placed.request_id),
        "{page}"
    );
}

#[tokio::test]
async fn serve_and_the_operator_commands_never_migrate_unless_told() {
    let migrated = test_database().await;
    let name = format!("empty_{}", uuid::Uuid::new_v4().simple());
    ensure_database(&with(&migrated.url, None, Some("postgres")), &name)
        .await
        .unwrap();
    let empty = with(&migrated.url, None, Some(&name));
    let tables = || async {
        let pool = connect(&empty, 1).await.unwrap();
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        n
    };

    let looked = carrot_cli(&["saga", "dead-letters"], &empty);
    assert!(!looked.status.success());
    assert!(String::from_utf8_lossy(&looked.stderr).contains("run `carrot migrate`"));
    let served = std::process::Command::new(env!("CARGO_BIN_EXE_carrot"))
        .arg("serve")
        .env("DATABASE_URL", &empty)
        .env("CARROT_JWT_SECRET", "3f9a1c7e5b2d8f4a6c0e9b1d3f5a7c2e")
        .env("CARROT_BIND", "127.0.0.1:0")
        .env("CARROT_LOG", "error")
        .output()
        .unwrap();
    assert!(!served.status.success());
    assert!(String::from_utf8_lossy(&served.stderr).contains("run `carrot migrate`"));
    assert_eq!(tables().await, 0, "nothing was migrated");

    let migrate = carrot_cli(&["migrate"], &empty);
    assert!(migrate.status.success(), "{migrate:?}");
    let looked = carrot_cli(&["saga", "dead-letters"], &empty);
    assert!(looked.status.success(), "{looked:?}");
}

#[tokio::test]
async fn an_older_binary_runs_on_a_schema_a_newer_one_migrated_further() {
    let db = test_database().await;
    // A migration this binary does not know, as a newer version would have left it.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (29991231000000, 'from a newer version', true, '\\x00', 1)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    prepare(&db.pool, Schema::Require).await.unwrap();
    let looked = carrot_cli(&["saga", "dead-letters"], &db.url);
    assert!(looked.status.success(), "{looked:?}");
    // Its own migrate step refuses (it cannot know what the newer one did): a rollback
    // runs the older serve, not the older migrate.
    let migrate = carrot_cli(&["migrate"], &db.url);
    assert!(!migrate.status.success());
}
