//! Sessions: logging out ends a token here at once and on another API process (a real one,
//! on the same database) within a second; logging out everywhere ends every session of the
//! user; a password change ends every other; a token that names no session is refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::Process;
use crate::helpers::{assert_problem, spawn_app, TestApp, User};

/// `GET /mypage` with `user`'s token at `base`.
async fn status_at(app: &TestApp, base: &str, user: &User) -> StatusCode {
    let response = app
        .client
        .get(format!("{base}/mypage"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    response.status()
}

async fn post_as(app: &TestApp, user: &User, path: &str) -> StatusCode {
    app.post(user, path).send().await.unwrap().status()
}

#[tokio::test]
async fn a_logged_out_token_is_refused_at_once_here_and_within_a_second_on_another_process() {
    let app = spawn_app().await;
    // A second API process on the same database, signing with the same secret.
    let replica = Process::start(
        &["serve", "--role", "api"],
        &[
            ("DATABASE_URL", app.db.url.clone()),
            (
                "CARROT_JWT_SECRET",
                "the test suite's own signing secret".to_owned(),
            ),
            ("CARROT_BIND", "127.0.0.1:0".to_owned()),
            ("CARROT_LOG", "warn".to_owned()),
        ],
        "listening on",
    );
    let phone = app.signup("leaver").await;
    let laptop = app.log_in(&phone).await;
    for base in [app.address.as_str(), replica.address.as_str()] {
        for user in [&phone, &laptop] {
            assert_eq!(status_at(&app, base, user).await, StatusCode::OK, "{base}");
        }
    }

    assert_eq!(
        post_as(&app, &phone, "/auth/logout").await,
        StatusCode::NO_CONTENT
    );
    let response = app.get(&phone, "/mypage").send().await.unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // The other process reads revocations every 250 ms and trusts its list for at most a
    // second: a second after the logout, it refuses the token too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = replica.address.as_str();
    assert_eq!(
        status_at(&app, base, &phone).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_at(&app, base, &laptop).await,
        StatusCode::OK,
        "the other session"
    );
    // Logging out again with the ended token is refused like any other call.
    assert_eq!(
        post_as(&app, &phone, "/auth/logout").await,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        post_as(&app, &laptop, "/auth/logout-all").await,
        StatusCode::NO_CONTENT
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        status_at(&app, base, &laptop).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_and_logging_out_everywhere_ends_all() {
    let app = spawn_app().await;
    let first = app.signup("mover").await;
    let (second, third) = (app.log_in(&first).await, app.log_in(&first).await);
    let change = |current: &str, new: &str| {
        app.post(&second, "/auth/password")
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    let response = change("not the password", "a brand new secret")
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = change("correct horse battery", "short").await.unwrap();
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = change("correct horse battery", "a brand new secret")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    for (user, status) in [
        (&first, StatusCode::UNAUTHORIZED),
        (&third, StatusCode::UNAUTHORIZED),
        (&second, StatusCode::OK),
    ] {
        assert_eq!(status_at(&app, &app.address, user).await, status);
    }
    let login = |password: &str| {
        app.client
            .post(app.url("/auth/login"))
            .json(&json!({"username": first.username, "password": password}))
            .send()
    };
    let response = login("correct horse battery").await.unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let response = login("a brand new secret").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token = response.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let fourth = User {
        token,
        ..first.clone()
    };

    assert_eq!(
        post_as(&app, &fourth, "/auth/logout-all").await,
        StatusCode::NO_CONTENT
    );
    for user in [&second, &fourth] {
        let status = status_at(&app, &app.address, user).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_token_that_names_no_session_is_refused() {
    let app = spawn_app().await;
    let user = app.signup("old").await;
    // A token as issued before sessions existed: valid signature and claims, no `sid`.
    let claims = json!({
        "sub": user.id, "role": "user", "iss": "carrot", "aud": "carrot-api",
        "iat": chrono::Utc::now().timestamp(), "exp": chrono::Utc::now().timestamp() + 600,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(b"the test suite's own signing secret");
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let old = User { token, ..user };
    let response = app.get(&old, "/mypage").send().await.unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn sessions_whose_tokens_all_expired_are_purged_and_live_ones_kept() {
    let app = spawn_app().await;
    let user = app.signup("expiring").await;
    sqlx::query(
        "INSERT INTO sessions (session_id, user_id, expires_at)
         VALUES (gen_random_uuid(), $1::uuid, now() - interval '1 minute')",
    )
    .bind(&user.id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let purged = carrot_api::auth::sessions::purge_expired(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(status_at(&app, &app.address, &user).await, StatusCode::OK);
}
