//! Races: the database's unique indexes decide, the loser gets 409 (or 200 for the same
//! instance), never a 500 and never a second row.

use crate::helpers::TestApp;
use futures::future::join_all;
use serde_json::json;

async fn fifty_keys_racing_for_one_url_leave_exactly_one_binding(app: TestApp) {
    let sub = app.subscription("basic", json!({})).await;
    let mut keys = Vec::new();
    for _ in 0..50 {
        keys.push(app.issue_key(&sub).await.1);
    }
    let url = "https://race.example.com/glpi";
    let answers = join_all(keys.iter().map(|k| app.register(k, url))).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let conflicts: Vec<&str> = answers
        .iter()
        .filter(|a| a.status == 409)
        .map(|a| a.code())
        .collect();
    assert_eq!(
        created,
        1,
        "statuses: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(conflicts.len(), 49);
    assert!(
        conflicts.iter().all(|c| *c == "url_already_registered"),
        "{conflicts:?}"
    );
    let regs = app
        .admin_get("/v1/admin/registrations?limit=500")
        .await
        .expect(200);
    assert_eq!(regs["items"].as_array().unwrap().len(), 1);
    // the audit chain stayed one chain under concurrent appends
    let chain = app.admin_get("/v1/admin/audit/verify").await.expect(200);
    assert_eq!(chain["intact"], true, "{chain}");
    let audit = app.admin_get("/v1/admin/audit?limit=500").await.expect(200);
    let binds = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "registration.bind");
    let (ok, refused): (Vec<_>, Vec<_>) = binds.partition(|e| e["outcome"] == "ok");
    assert_eq!(
        (ok.len(), refused.len()),
        (1, 49),
        "the audit trail agrees with the answers"
    );
}

async fn one_key_racing_for_one_url_binds_once_and_answers_200_to_the_rest(app: TestApp) {
    let (_, key) = app.new_key().await;
    let url = "https://same.example.com";
    let answers = join_all((0..20).map(|_| app.register(&key, url))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|a| a.body["registration"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
}

async fn one_key_racing_for_many_urls_binds_to_exactly_one(app: TestApp) {
    let (_, key) = app.new_key().await;
    let urls: Vec<String> = (0..20)
        .map(|i| format!("https://u{i}.example.com"))
        .collect();
    let answers = join_all(urls.iter().map(|u| app.register(&key, u))).await;
    assert_eq!(answers.iter().filter(|a| a.status == 201).count(), 1);
    assert!(
        answers
            .iter()
            .filter(|a| a.status != 201)
            .all(|a| a.status == 409 && a.code() == "key_already_bound")
    );
    let regs = app.admin_get("/v1/admin/registrations").await.expect(200);
    assert_eq!(regs["items"].as_array().unwrap().len(), 1);
}

crate::on_both_backends!(
    fifty_keys_racing_for_one_url_leave_exactly_one_binding,
    one_key_racing_for_one_url_binds_once_and_answers_200_to_the_rest,
    one_key_racing_for_many_urls_binds_to_exactly_one,
);
