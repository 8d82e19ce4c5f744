//! Server functions refuse bad input the way the REST API does: a 4xx status and a typed body
//! the page matches on (`app::api::ServerError`), never a 500.

use app::model::Role;
use serde_json::{Value, json};

use crate::common::spawn_app;

#[tokio::test]
async fn a_checklist_that_does_not_parse_is_a_400_naming_the_line() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    let res = app_post_form(&admin, &app.url("/api/admin_save_checklist"), &[("toml", "id = \"x\"\nsteps = [")]).await;
    assert_eq!(res.0, 400, "{}", res.1);
    assert_eq!(res.1["kind"], "invalid", "{}", res.1);
    assert!(res.1["message"].as_str().is_some_and(|m| m.starts_with("line ")), "{}", res.1);
}

#[tokio::test]
async fn a_bad_form_value_is_a_400_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    let form = [("name", "ci"), ("scope", "read"), ("expires_in_days", "soon")];
    let res = app_post_form(&admin, &app.url("/api/admin_create_token"), &form).await;
    assert_eq!(res.0, 400, "{}", res.1);
    assert_eq!(res.1, json!({"kind": "invalid", "field": "expires_in_days", "message": "a whole number of days"}));
}

#[tokio::test]
async fn an_update_of_a_missing_incident_is_a_404_and_a_refused_one_a_400() {
    let app = spawn_app().await;
    let commander = app.browser_of(Role::Commander).await;
    let missing = commander
        .post(app.url("/api/update_incident"))
        .json(&json!({"id": uuid::Uuid::new_v4(), "patch": {"title": "x"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.expect("json"), json!({"kind": "not_found", "what": "incident"}));

    let created: Value = commander
        .post(app.url("/api/post_incident"))
        .json(&json!({"input": {"title": "Checkout is slow"}}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("incident");
    let refused = commander
        .post(app.url("/api/update_incident"))
        .json(&json!({"id": created["id"], "patch": {"title": ""}}))
        .send()
        .await
        .expect("post");
    let status = refused.status();
    let body: Value = refused.json().await.expect("json");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["kind"], "invalid", "{body}");
    assert_eq!(body["field"], "title", "{body}");
}

async fn app_post_form(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let res = client.post(url).form(form).send().await.expect("post");
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON error body"))
}
