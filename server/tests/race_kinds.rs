//! Two real server processes on one fresh PostgreSQL database race for the uses of an
//! enrollment key and of an invitation (DESIGN §11.2, §11.3): `max_uses` is never exceeded.
//!
//! - 200 concurrent enrollments of distinct agents, split between the processes, on a key with
//!   `max_uses` 50: exactly 50 answers `201`, 150 answers `409 enrollment_exhausted`, the key
//!   shows `uses: 50` and lists 50 agents.
//! - 50 concurrent redemptions of distinct emails on an invitation with `max_uses` 5: exactly
//!   5 `201`, 45 `409 invitation_exhausted`, 5 accounts.
//!
//! Needs `TEST_DATABASE_URL` (skipped with a message without it, a failure when `CI` is set).

mod common;

use common::*;
use serde_json::{Value, json};

/// Fires `n` requests at once, alternating between the processes; returns (status, body).
async fn race(
    client: &reqwest::Client,
    procs: [&Proc; 2],
    path: &str,
    n: usize,
    body: impl Fn(usize) -> Value,
) -> Vec<(u16, Value)> {
    futures::future::join_all((0..n).map(|i| {
        let client = client.clone();
        let url = format!("{}{path}", procs[i % 2].base);
        let body = body(i);
        async move {
            let resp = client.post(url).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.expect("a JSON answer"))
        }
    }))
    .await
}

/// (number of `201`, number of `409` with `code`); panics on any other answer.
fn tally(answers: &[(u16, Value)], code: &str) -> (usize, usize) {
    let mut created = 0;
    let mut refused = 0;
    for (status, body) in answers {
        match status {
            201 => created += 1,
            409 if body["error"]["code"] == code => refused += 1,
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    (created, refused)
}

#[actix_web::test]
async fn two_processes_race_200_enrollments_and_50_redemptions_and_max_uses_holds() {
    let Some((base, db_url, name)) = create_pg_database("kinds") else {
        return;
    };
    let _db = PgDb { base, name };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut a = start(&db_url, dir.path());
    let mut b = start(&db_url, dir.path());
    wait_ready(&client, &mut a).await;
    wait_ready(&client, &mut b).await;
    let procs = [&a, &b];
    let sub = admin_post(
        &client,
        &a,
        "/v1/admin/subscribers",
        json!({"name": "Race"}),
    )
    .await;

    let k = admin_post(
        &client,
        &b,
        "/v1/admin/enrollment-keys",
        json!({"subscriber_id": sub["id"], "entity": "Root", "max_uses": 50}),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_owned();
    let answers = race(
        &client,
        procs,
        "/v1/enrollments",
        200,
        |i| json!({"enrollment_key": key, "agent_id": format!("agent-{i}")}),
    )
    .await;
    let (created, refused) = tally(&answers, "enrollment_exhausted");
    println!("enrollments: {created} created, {refused} refused");
    assert_eq!((created, refused), (50, 150));
    for p in procs {
        let shown = admin_get(
            &client,
            p,
            &format!("/v1/admin/enrollment-keys/{}", k["id"].as_str().unwrap()),
        )
        .await;
        assert_eq!(shown["uses"], 50, "{shown}");
        let agents = all_pages(
            &client,
            p,
            &format!(
                "/v1/admin/enrollment-keys/{}/enrollments",
                k["id"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(agents.len(), 50);
    }

    let inv = admin_post(
        &client,
        &a,
        "/v1/admin/invitations",
        json!({"subscriber_id": sub["id"], "role": "viewer", "max_uses": 5}),
    )
    .await;
    let inv_key = inv["key"].as_str().unwrap().to_owned();
    let answers = race(&client, procs, "/v1/invitations/redemptions", 50, |i| {
        json!({"invitation_key": inv_key, "email": format!("p{i}@race.test"), "name": format!("P{i}")})
    })
    .await;
    let (created, refused) = tally(&answers, "invitation_exhausted");
    println!("redemptions: {created} created, {refused} refused");
    assert_eq!((created, refused), (5, 45));
    let shown = admin_get(
        &client,
        &b,
        &format!("/v1/admin/invitations/{}", inv["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(shown["uses"], 5, "{shown}");

    let check = admin_get(&client, &a, "/v1/admin/audit/verify").await;
    assert_eq!(check["intact"], true, "{check}");
    drop(a);
    drop(b);
}
