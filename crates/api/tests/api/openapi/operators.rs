//! The operators' phase of the whole-trade test: dead letters, subscriptions, quarantine, repairs.

use carrot_api::payment::SimulationProfile;
use serde_json::{json, Value};

use crate::helpers::{eventually, Placed, TestApp, User};

use super::conformance::Conformance;
use super::whole_trade::signed_up;

/// Operators.
pub(super) async fn operators_phase(
    app: &TestApp,
    c: &mut Conformance,
    buyer: &User,
    placed: &Placed,
) {
    let admin = app.make_admin(&signed_up(app, c, "ops").await).await;
    let letters = eventually("the payout to be dead-lettered", || async {
        let response = app.get(&admin, "/admin/dead-letters").send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        (!body["items"].as_array()?.is_empty()).then_some(body)
    })
    .await;
    let command_id = letters["items"][0]["command_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .get(&admin, "/admin/dead-letters?limit=5")
        .send()
        .await
        .unwrap();
    c.check("get", "/admin/dead-letters", response).await;
    let response = app
        .get(&admin, "/admin/dead-letters?limit=x")
        .send()
        .await
        .unwrap();
    c.check("get", "/admin/dead-letters", response).await;
    c.check(
        "get",
        "/admin/subscriptions",
        app.get(&admin, "/admin/subscriptions")
            .send()
            .await
            .unwrap(),
    )
    .await;
    c.check(
        "get",
        "/admin/subscriptions",
        app.get(buyer, "/admin/subscriptions").send().await.unwrap(),
    )
    .await;
    for (user, path) in [
        (&admin, "/admin/subscriptions/settlement/quarantine"),
        (
            &admin,
            "/admin/subscriptions/catalog/quarantine?limit=2&cursor=1.2",
        ),
        (
            &admin,
            "/admin/subscriptions/settlement/quarantine?cursor=x",
        ),
        (&admin, "/admin/subscriptions/nobody/quarantine"),
        (buyer, "/admin/subscriptions/settlement/quarantine"),
    ] {
        let response = app.get(user, path).send().await.unwrap();
        c.check("get", "/admin/subscriptions/{name}/quarantine", response)
            .await;
    }
    for (user, path) in [
        (&admin, "/admin/subscriptions/settlement/quarantine/retry"),
        (&admin, "/admin/subscriptions/nobody/quarantine/retry"),
        (buyer, "/admin/subscriptions/settlement/quarantine/retry"),
    ] {
        let response = app.post(user, path).send().await.unwrap();
        c.check(
            "post",
            "/admin/subscriptions/{name}/quarantine/retry",
            response,
        )
        .await;
    }
    for (user, path) in [
        (&admin, "/admin/reconciliation/mismatches"),
        (&admin, "/admin/reconciliation/mismatches?limit=0"),
        (buyer, "/admin/reconciliation/mismatches"),
    ] {
        let response = app.get(user, path).send().await.unwrap();
        c.check("get", "/admin/reconciliation/mismatches", response)
            .await;
    }
    for body in [
        json!({"resolution": "checked by hand"}),
        json!({"resolution": ""}),
    ] {
        let response = app
            .post(
                &admin,
                "/admin/reconciliation/mismatches/refund:none/resolve",
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        c.check(
            "post",
            "/admin/reconciliation/mismatches/{key}/resolve",
            response,
        )
        .await;
    }
    app.gateway.set_profile(SimulationProfile::default());
    let retry = format!("/admin/dead-letters/{command_id}/retry");
    c.check(
        "post",
        &retry,
        app.post(&admin, &retry).send().await.unwrap(),
    )
    .await;
    let unknown = "/admin/dead-letters/nope/retry";
    c.check(
        "post",
        unknown,
        app.post(&admin, unknown).send().await.unwrap(),
    )
    .await;
    // Discarding: a declined payout never is; a bad reason, an unknown letter.
    let discard = format!("/admin/dead-letters/{command_id}/discard");
    for (path, reason) in [
        (discard.as_str(), "handled by hand"),
        (discard.as_str(), ""),
        ("/admin/dead-letters/nope/discard", "handled by hand"),
    ] {
        let response = app
            .post(&admin, path)
            .json(&json!({ "reason": reason }))
            .send()
            .await
            .unwrap();
        c.check("post", path, response).await;
    }
    // The declined payout: sent again under a new attempt; then nothing is left to settle
    // outside; and the refusals.
    let payment = &placed.payment_id;
    for (template, path, body) in [
        (
            "/admin/payments/{id}/retry-transfer",
            format!("/admin/payments/{payment}/retry-transfer"),
            json!({"reason": ""}),
        ),
        (
            "/admin/payments/{id}/retry-transfer",
            format!("/admin/payments/{payment}/retry-transfer"),
            json!({"reason": "the seller fixed their bank account"}),
        ),
        (
            "/admin/payments/{id}/retry-transfer",
            "/admin/payments/nope/retry-transfer".to_owned(),
            json!({"reason": "x"}),
        ),
        (
            "/admin/payments/{id}/settle-outside",
            format!("/admin/payments/{payment}/settle-outside"),
            json!({"reference": "", "reason": "x"}),
        ),
    ] {
        let response = app.post(&admin, &path).json(&body).send().await.unwrap();
        c.check("post", template, response).await;
    }
    app.wait_payment(buyer, payment, "paid_out").await;
    let path = format!("/admin/payments/{payment}/settle-outside");
    let body = json!({"reference": "bank-1", "reason": "paid by hand"});
    let response = app.post(&admin, &path).json(&body).send().await.unwrap();
    let refused = c
        .check("post", "/admin/payments/{id}/settle-outside", response)
        .await;
    assert_eq!(refused["code"], "payment_already_paid_out");
}
