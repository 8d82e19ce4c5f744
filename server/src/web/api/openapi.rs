//! The REST API's OpenAPI 3.1 document, generated from the code: every route adds its operation
//! as it is registered in [`super::routes`] (path, method, what it needs), and its request and
//! answer bodies are the Rust types the handler takes and returns (`utoipa::ToSchema`, derived on
//! the shared model). Served at `GET /api/v1/openapi.json`; the integration tests check every
//! JSON answer they receive against it.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use http::{Method, header};
use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ComponentsBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content as MediaContent, InfoBuilder, OpenApiBuilder, Paths, Ref, RefOr, Required};
use utoipa::{PartialSchema, ToSchema};

use crate::web::access::Need;

type Schemas = Vec<(String, RefOr<Schema>)>;
type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// A body: its media type and, for JSON, the schema of the Rust type behind it.
#[derive(Clone, Copy)]
pub struct Body {
    media: &'static str,
    schema: Option<SchemaFn>,
}

/// A JSON body of type `T`.
pub fn json<T: ToSchema>() -> Body {
    Body { media: "application/json", schema: Some(named::<T>) }
}

/// A JSON array of `T`.
pub fn list<T: ToSchema>() -> Body {
    Body { media: "application/json", schema: Some(list_of::<T>) }
}

/// Any JSON value (the OpenAPI document itself).
pub fn any_json() -> Body {
    Body { media: "application/json", schema: Some(|_| Value::schema()) }
}

/// A body that is not JSON (Markdown, SVG, an event stream).
pub fn other(media: &'static str) -> Body {
    Body { media, schema: None }
}

fn named<T: ToSchema>(out: &mut Schemas) -> RefOr<Schema> {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
    Ref::from_schema_name(T::name()).into()
}

fn list_of<T: ToSchema>(out: &mut Schemas) -> RefOr<Schema> {
    ArrayBuilder::new().items(named::<T>(out)).into()
}

/// What one route takes and answers, next to its access rule.
#[derive(Clone)]
pub struct RouteDoc {
    pub method: Method,
    pub path: &'static str,
    pub need: Need,
    pub body: Option<Body>,
    /// Success answers: status and body (`None`: no body).
    pub answers: Vec<(u16, Option<Body>)>,
}

/// The document for `routes`, as JSON.
pub fn document(routes: &[RouteDoc]) -> Value {
    let mut schemas: Schemas = Vec::new();
    let error = error_schema();
    let mut paths = Paths::new();
    for r in routes {
        let mut op = OperationBuilder::new()
            .operation_id(Some(operation_id(&r.method, r.path)))
            .tag(r.path.trim_start_matches("/api/v1/").split('/').next().unwrap_or("api"))
            .description(Some(need_text(r.need)));
        for name in path_params(r.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(String::schema())),
            );
        }
        if let Some(body) = r.body {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(body.media, content(body, &mut schemas))
                    .build(),
            ));
        }
        for (status, body) in &r.answers {
            let mut answer = ResponseBuilder::new().description(reason(*status));
            if let Some(body) = body {
                answer = answer.content(body.media, content(*body, &mut schemas));
            }
            op = op.response(status.to_string(), answer.build());
        }
        op = op.response(
            "default",
            ResponseBuilder::new()
                .description("The request was refused or failed: a JSON body names why, and the field at fault")
                .content("application/json", MediaContent::new(Some(Ref::from_schema_name("Error"))))
                .build(),
        );
        if r.need != Need::Public {
            op = op.securities(Some([
                SecurityRequirement::new("token", Vec::<String>::new()),
                SecurityRequirement::new("session", Vec::<String>::new()),
            ]));
        }
        paths.add_path_operation(r.path, vec![http_method(&r.method)], op.build());
    }
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .schema("Error", error)
        .security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()))
        .security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("triage_session"))))
        .build();
    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Triage REST API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Services, probes and their results, incidents, guidance, postmortems, users and tokens. Errors answer a JSON body `{\"error\", \"message\", \"field\"}`.")),
        )
        .paths(paths)
        .components(Some(components))
        .build();
    let mut value = serde_json::to_value(doc).unwrap_or(Value::Null);
    open_flattened(&mut value);
    value
}

/// `#[serde(flatten)]` makes a schema `allOf` the flattened type and the fields beside it; a
/// flattened type that refuses unknown fields (`additionalProperties: false`) would then refuse
/// those sibling fields. The answers do carry them, so such types are opened up.
fn open_flattened(doc: &mut Value) {
    fn collect(v: &Value, inside_all_of: bool, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if inside_all_of && let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.trim_start_matches("#/components/schemas/").to_string());
                }
                for (k, child) in map {
                    collect(child, k == "allOf", out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| collect(i, inside_all_of, out)),
            _ => {}
        }
    }
    let mut flattened = Vec::new();
    collect(doc, false, &mut flattened);
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for name in flattened {
            if let Some(Value::Object(s)) = schemas.get_mut(&name) {
                s.remove("additionalProperties");
            }
        }
    }
}

fn content(body: Body, schemas: &mut Schemas) -> MediaContent {
    MediaContent::new(body.schema.map(|f| f(schemas)))
}

fn error_schema() -> RefOr<Schema> {
    let text = || ObjectBuilder::new().schema_type(SchemaType::new(Type::String));
    ObjectBuilder::new()
        .property("error", text().description(Some("a stable code: bad_request, not_found, conflict, …")))
        .required("error")
        .property("message", text().description(Some("what went wrong, safe to show")))
        .required("message")
        .property("field", text().description(Some("the field at fault, when one is")))
        .into()
}

fn need_text(need: Need) -> String {
    match need {
        Need::Public => "Open to anyone.".into(),
        Need::SignedIn => "Any signed-in user or token.".into(),
        Need::Push => "A `push` or `admin` token, or the probe's own push token.".into(),
        Need::Agent => "An `agent` (or `admin`) token.".into(),
        Need::Role(role) => format!(
            "Needs the {} role (a session), or an `admin` token{}.",
            role.as_str(),
            if role == app::model::Role::Viewer { "; a `read` token may read" } else { "" }
        ),
    }
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn operation_id(method: &Method, path: &str) -> String {
    let rest: Vec<&str> = path
        .trim_start_matches("/api/v1/")
        .split('/')
        .map(|s| s.trim_start_matches('{').trim_end_matches('}'))
        .filter(|s| !s.is_empty())
        .collect();
    format!("{}_{}", method.as_str().to_lowercase(), rest.join("_").replace(['-', '.'], "_"))
}

fn http_method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        _ => HttpMethod::Get,
    }
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Answer")
}

/// `GET /api/v1/openapi.json`: built once, on first request.
pub async fn serve() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(|| document(&super::routes().docs()).to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_and_parameters_come_from_the_path() {
        assert_eq!(
            operation_id(&Method::GET, "/api/v1/incidents/{id}/timeline/{entry}"),
            "get_incidents_id_timeline_entry"
        );
        assert_eq!(operation_id(&Method::GET, "/api/v1/postmortems/{id}/export.md"), "get_postmortems_id_export_md");
        assert_eq!(path_params("/api/v1/incidents/{id}/timeline/{entry}").collect::<Vec<_>>(), ["id", "entry"]);
    }

    #[test]
    fn a_flattened_type_accepts_the_fields_beside_it() {
        let mut doc = serde_json::json!({
            "components": {"schemas": {
                "Inner": {"type": "object", "additionalProperties": false},
                "Outer": {"allOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "object"}]},
                "Strict": {"type": "object", "additionalProperties": false}
            }}
        });
        open_flattened(&mut doc);
        assert!(doc.pointer("/components/schemas/Inner/additionalProperties").is_none());
        assert_eq!(doc.pointer("/components/schemas/Strict/additionalProperties"), Some(&Value::Bool(false)));
    }
}
