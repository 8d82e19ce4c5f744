//! The OpenAPI document: served to any caller with credentials, covering every REST route of the
//! access table. (Every JSON answer the other tests receive is checked against it by the layer in
//! `common::openapi`.)

use app::model::Scope;
use http::StatusCode;
use serde_json::Value;
use server::web::access::{Kind, Secured};

use crate::common::{create_token, openapi, spawn_app};

#[tokio::test]
async fn the_document_names_every_rest_route_of_the_access_table_with_its_answers() {
    let app = spawn_app().await;
    let doc: Value = app.get_json("/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    assert_eq!(&doc, openapi::document(), "the served document is the one the tests check against");
    let (_, table) = server::web::http_server::access_table(Secured::default());
    let rest: Vec<_> = table.rules.iter().filter(|r| r.kind == Kind::Api).collect();
    assert!(rest.len() > 50, "the REST API has {} routes", rest.len());
    for rule in rest {
        let op = &doc["paths"][rule.path][rule.method.as_str().to_lowercase()];
        assert!(op.is_object(), "{} {} is missing from the document", rule.method, rule.path);
        let answers = op["responses"].as_object().expect("responses");
        assert!(
            answers.keys().any(|k| k.starts_with('2') || k.starts_with('3')),
            "{} {} documents no success answer: {answers:?}",
            rule.method,
            rule.path
        );
        for param in rule.path.split('/').filter(|s| s.starts_with('{')) {
            let name = param.trim_matches(['{', '}']);
            let params = op["parameters"].as_array().expect("parameters");
            assert!(params.iter().any(|p| p["name"] == name && p["in"] == "path"), "{} lacks {name}", rule.path);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn any_credentials_may_read_the_document_and_none_may_not() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/openapi.json");
    assert_eq!(app.anonymous.get(&url).send().await.expect("get").status(), StatusCode::UNAUTHORIZED);
    for scope in [Scope::Read, Scope::Push] {
        let token = create_token(&app.pool, scope, "doc-reader").await;
        let res = app.anonymous.get(&url).bearer_auth(&token).send().await.expect("get");
        assert_eq!(res.status(), StatusCode::OK, "a {scope:?} token");
    }
    let viewer = app.browser_of(app::model::Role::Viewer).await;
    assert_eq!(viewer.get(&url).send().await.expect("get").status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn the_test_apps_check_their_json_answers_against_the_document() {
    let app = spawn_app().await;
    let before = openapi::CHECKED.load(std::sync::atomic::Ordering::Relaxed);
    let services: Vec<Value> = app.get_json("/api/v1/services").await;
    let missing =
        app.client.get(app.url(&format!("/api/v1/incidents/{}", uuid::Uuid::new_v4()))).send().await.expect("get");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(openapi::CHECKED.load(std::sync::atomic::Ordering::Relaxed) >= before + 2, "{services:?}");
    app.stop().await;
}

#[test]
fn an_answer_that_departs_from_the_document_is_caught() {
    let service = r#"{"id": "6c0d0b3e-43c6-4b8e-9a0e-2b1a7f4c9d01", "name": "shop"}"#;
    let err = openapi::check("get", "/api/v1/services/6c0d0b3e-43c6-4b8e-9a0e-2b1a7f4c9d01", 200, service.as_bytes())
        .expect_err("a service without its required fields");
    assert!(err.contains("/api/v1/services/{id}"), "{err}");
    let refusal = br#"{"error": "not_found", "message": "service not found"}"#;
    openapi::check("get", "/api/v1/services/6c0d0b3e-43c6-4b8e-9a0e-2b1a7f4c9d01", 404, refusal)
        .expect("an error body");
    let bad_refusal = br#"{"error": 404}"#;
    assert!(openapi::check("get", "/api/v1/services/x", 404, bad_refusal).is_err());
}
