//! The OpenAPI document (generated from the handlers) and the API reference page at `/docs`:
//! Scalar's renderer, embedded in the binary at build time (`scripts/api-reference` fetches it
//! from npm), so the page works offline and fetches nothing from a CDN.

use axum::response::Html;
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate API", description = include_str!("api-intro.md")),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, login, tokens, profile, sessions"),
        (name = "keys", description = "API keys"),
        (name = "plans", description = "The public plan catalog"),
        (name = "usage", description = "Subscription and usage of the caller"),
        (name = "metering", description = "Calls a customer's backend makes before metered work"),
        (name = "system", description = "Health and metrics"),
        (name = "admin", description = "The back office: staff only, by role"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every error answer: `{"error": {"code", "message", "request_id", ...details}}`.
#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"error": {"code": "email_taken", "message": "an account with this email already exists", "request_id": "14ec827b-afd2-4054-8128-dc0227b7a439"}})))]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, documented code to switch on.
    #[schema(schema_with = super::error::error_code_schema)]
    code: String,
    message: String,
    /// Quote it to support: it explains the refusal.
    request_id: String,
    /// Per-field problems (validation_failed).
    #[schema(nullable = false)]
    fields: Option<Vec<crate::error::FieldError>>,
    /// The facts behind the code, beside it: `quota_exceeded` adds `metric`, `limit`, `used`,
    /// `remaining`, `requested`, `resets_at`, `plan` and `upgrade_to`; `rate_limited` adds
    /// `scope`, `limit`, `window_s`, `retry_after_s` and `resets_at`; `stripe_error` adds
    /// `stripe_status`, `stripe_code` and `stripe_type`.
    #[serde(flatten)]
    details: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Gives every error answer of the document a description and an example of the shared error
/// shape. Runs over the merged document: the routers add their paths after [`ApiDoc`]'s own
/// modifiers have run.
pub fn describe_error_answers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    let codes: Vec<&str> = crate::error::Error::codes()
        .chain(super::error::TRANSPORT_CODES.iter().copied())
        .collect();
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            for (status, answer) in op.responses.responses.iter_mut() {
                let RefOr::T(answer) = answer else { continue };
                let is_error_body = answer.content.get("application/json").is_some_and(|c| {
                    matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorBody"))
                });
                if !is_error_body {
                    continue;
                }
                let Some((reason, fallback_code, message)) = error_sample(status) else {
                    continue;
                };
                // A description that names the codes ("quota_exceeded, rate_limited") picks
                // the example's code; otherwise the status's usual one.
                let named = answer
                    .description
                    .split([',', ' ', ':'])
                    .find(|w| codes.contains(w))
                    .map(str::to_owned);
                let named = named.as_deref();
                let code = named.unwrap_or(fallback_code);
                if answer.description.is_empty() {
                    answer.description = format!("{reason}: `error.code` says why");
                }
                let message = if named.is_some() && code != fallback_code {
                    code.replace('_', " ")
                } else {
                    message.to_owned()
                };
                let content = answer
                    .content
                    .get_mut("application/json")
                    .expect("checked above");
                let mut error = json!({
                    "code": code,
                    "message": message,
                    "request_id": "5a86be31-cd3d-4bd6-a3a9-8d6dd1377255",
                });
                if let (Some(error), Some(serde_json::Value::Object(facts))) =
                    (error.as_object_mut(), error_facts(code))
                {
                    error.extend(facts);
                }
                content.example = Some(json!({ "error": error }));
            }
        }
    }
}

/// The details that travel beside a code, as a client sees them.
fn error_facts(code: &str) -> Option<serde_json::Value> {
    Some(match code {
        "quota_exceeded" => json!({"message": "quota exceeded for `videos`", "metric": "videos",
            "limit": 3, "used": 3, "remaining": 0, "requested": 1,
            "resets_at": "2026-11-30T00:00:00Z", "plan": "free", "upgrade_to": "pro"}),
        "rate_limited" => json!({"scope": "api", "limit": 10, "window_s": 3600,
            "retry_after_s": 823, "resets_at": "2026-11-29T12:00:00Z"}),
        "validation_failed" => json!({"fields": [{"field": "email", "code": "invalid",
            "message": "not an email address"}]}),
        _ => return None,
    })
}

/// The reason phrase, usual code and a message of an error status.
fn error_sample(status: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match status {
        "400" => (
            "Bad request",
            "bad_request",
            "the request could not be read",
        ),
        "401" => (
            "Unauthorized",
            "invalid_token",
            "the access token is invalid",
        ),
        "402" => (
            "Payment required",
            "insufficient_credits",
            "not enough credits",
        ),
        "403" => ("Forbidden", "forbidden", "your role does not allow this"),
        "404" => ("Not found", "not_found", "no such resource"),
        "409" => ("Conflict", "already_subscribed", "already subscribed"),
        "422" => (
            "Unprocessable",
            "validation_failed",
            "the request is not valid",
        ),
        "429" => (
            "Too many requests",
            "rate_limited",
            "too many requests for `api`: retry in 823 s",
        ),
        "500" => (
            "Internal error",
            "internal",
            "something went wrong on our side; quote the request id when you report it",
        ),
        "502" => (
            "Stripe failed",
            "stripe_unavailable",
            "Stripe could not be reached; nothing was changed, try again later",
        ),
        "503" => (
            "Unavailable",
            "stripe_not_configured",
            "Stripe is not configured on this server",
        ),
        _ => return None,
    })
}

/// Scalar's standalone bundle, when the build found it (see `src-tauri/build.rs`).
#[cfg(tollgate_api_reference)]
const RENDERER: Option<&[u8]> = Some(include_bytes!(env!("TOLLGATE_API_REFERENCE_JS")));
#[cfg(not(tollgate_api_reference))]
const RENDERER: Option<&[u8]> = None;

#[cfg(tollgate_api_reference)]
const RENDERER_VERSION: &str = env!("TOLLGATE_API_REFERENCE_VERSION");
#[cfg(not(tollgate_api_reference))]
const RENDERER_VERSION: &str = "";

/// Whether this binary carries the API reference renderer.
pub fn has_renderer() -> bool {
    RENDERER.is_some()
}

/// `/docs`: the API reference, or, in a build without the renderer, how to add it and a plain
/// list of the routes.
pub async fn page() -> Html<String> {
    match RENDERER {
        Some(_) => Html(REFERENCE_PAGE.replace("{version}", RENDERER_VERSION)),
        None => Html(FALLBACK_PAGE.to_owned()),
    }
}

/// `/docs/scalar.js`: the embedded renderer.
pub async fn renderer() -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    match RENDERER {
        Some(js) => (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            js,
        )
            .into_response(),
        None => super::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "route_not_found",
            "this build has no API reference renderer: run scripts/api-reference, then rebuild",
        )
        .into_response(),
    }
}

/// "Try it" sends requests to the server that served the page, with the bearer token entered
/// under Authentication. Fonts, telemetry and the hosted AI and MCP features are off: the page
/// talks to nothing but this server.
const REFERENCE_PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tollgate API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><noscript>The API reference needs JavaScript; the document itself is at
<a href="/openapi.json">/openapi.json</a>.</noscript>
<div id="app"></div>
<script src="/docs/scalar.js?v={version}"></script>
<script>
Scalar.createApiReference('#app', {
  url: '/openapi.json',
  servers: [{ url: window.location.origin, description: 'This Tollgate server' }],
  authentication: { preferredSecurityScheme: 'bearer' },
  withDefaultFonts: false,
  telemetry: false,
  mcp: { disabled: true },
  agent: { disabled: true },
  showToolbar: 'never',
  defaultHttpClient: { targetKey: 'shell', clientKey: 'curl' },
});
</script></body></html>"##;

const FALLBACK_PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tollgate API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:20px}
main{max-width:980px;margin:0 auto;padding:24px 32px}
.note{background:#fff8e1;border:1px solid #f0d58a;border-radius:8px;padding:12px 16px}
.op{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:10px 0;padding:12px 16px}
.m{display:inline-block;min-width:64px;font-weight:700;font-family:ui-monospace,monospace}
code,.p{font-family:ui-monospace,monospace}.d{color:#475467;margin:4px 0 0}
</style></head><body><header><h1>Tollgate API</h1></header>
<main><p class="note">This build has no API reference renderer. Run <code>scripts/api-reference</code>
(<code>make serve</code>, <code>make run</code> and <code>make test</code> do it for you; it needs npm once),
then rebuild. Meanwhile the routes are listed below and the document is at
<a href="/openapi.json"><code>/openapi.json</code></a>.</p>
<p>Authenticate with <code>Authorization: Bearer &lt;access token or sk_ key&gt;</code>. Errors share one shape:
<code>{"error": {"code", "message", "request_id", …}}</code>.</p><div id="ops">Loading…</div></main>
<script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{
  const out=document.getElementById('ops');out.textContent='';
  for(const [path,item] of Object.entries(doc.paths)){for(const [m,op] of Object.entries(item)){
    const d=document.createElement('div');d.className='op';
    const h=document.createElement('div');
    const ms=document.createElement('span');ms.className='m';ms.textContent=m.toUpperCase();
    const ps=document.createElement('span');ps.className='p';ps.textContent=path;h.append(ms,ps);
    const p=document.createElement('p');p.className='d';p.textContent=op.summary||'';
    d.append(h,p);out.appendChild(d);}}
}).catch(e=>{document.getElementById('ops').textContent='Could not load /openapi.json: '+e;});
</script></body></html>"##;

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use std::collections::HashSet;

    fn document() -> Value {
        serde_json::to_value(crate::http::openapi()).unwrap()
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
        out
    }

    /// The names a path template declares: `/v1/keys/{id}` has `id`.
    fn template_names(path: &str) -> HashSet<String> {
        path.split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_owned()))
            .collect()
    }

    #[test]
    fn every_operation_has_a_unique_id_and_a_one_line_summary() {
        let doc = document();
        let mut ids = HashSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(!summary.is_empty(), "{method} {path} has no summary");
            assert!(
                !summary.contains('\n') && summary.len() <= 100,
                "{method} {path}: the summary is one short line, details go in the description: {summary:?}"
            );
        }
    }

    #[test]
    fn path_parameters_are_in_the_template_and_every_template_name_is_a_parameter() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            let names = template_names(&path);
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let in_path: HashSet<String> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            for p in &in_path {
                assert!(
                    names.contains(p),
                    "{method} {path}: `{p}` is documented in: path but the path has no {{{p}}} (a query parameter?)"
                );
            }
            assert_eq!(
                in_path, names,
                "{method} {path}: undocumented path parameters"
            );
            for p in params.iter().filter(|p| p["in"] == "query") {
                assert!(
                    p["schema"]["type"].is_string()
                        || p["schema"]["$ref"].is_string()
                        || p["schema"]["oneOf"].is_array()
                        || p["schema"]["enum"].is_array(),
                    "{method} {path}: query parameter {} has no type",
                    p["name"]
                );
            }
        }
    }

    #[test]
    fn bounded_query_parameters_carry_their_bounds_and_defaults() {
        let doc = document();
        let history = &doc["paths"]["/v1/me/usage/history"]["get"]["parameters"];
        let days = history
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "days")
            .unwrap();
        assert_eq!(days["in"], "query");
        assert_eq!(days["required"], false);
        assert_eq!(days["schema"]["minimum"], 1);
        assert_eq!(days["schema"]["maximum"], 366);
        assert_eq!(days["schema"]["default"], 30);
        for (path, name) in [
            ("/v1/admin/users", "limit"),
            ("/v1/admin/revenue/mrr", "months"),
            ("/v1/admin/audit", "limit"),
            ("/v1/admin/stripe/events", "limit"),
        ] {
            let p = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{path} has no {name}"))
                .clone();
            assert_eq!(p["in"], "query", "{path} {name}");
            assert!(p["schema"]["maximum"].is_number(), "{path} {name}: {p}");
            assert!(p["schema"]["default"].is_number(), "{path} {name}: {p}");
        }
    }

    #[test]
    fn every_operation_documents_its_errors_with_the_shared_shape_and_an_example() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            // Prometheus scrapes /metrics: it answers 200 or not at all.
            if path == "/metrics" {
                continue;
            }
            let errors: Vec<(&String, &Value)> = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(status, _)| status.starts_with('4') || status.starts_with('5'))
                .collect();
            assert!(
                !errors.is_empty(),
                "{method} {path} documents no error answer"
            );
            for (status, answer) in errors {
                assert!(
                    !answer["description"]
                        .as_str()
                        .unwrap_or_default()
                        .is_empty(),
                    "{method} {path} {status} has no description"
                );
                let json = &answer["content"]["application/json"];
                if json["schema"]["$ref"] == "#/components/schemas/ErrorBody" {
                    let code = &json["example"]["error"]["code"];
                    assert!(code.is_string(), "{method} {path} {status}: no example");
                }
            }
        }
    }

    #[test]
    fn every_json_request_body_has_an_example() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            let json = &op["requestBody"]["content"]["application/json"];
            let Some(schema) = json["schema"]["$ref"].as_str() else {
                continue;
            };
            let name = schema.rsplit('/').next().unwrap();
            let component = &doc["components"]["schemas"][name];
            assert!(
                json["example"].is_object() || component["examples"].is_array(),
                "{method} {path}: the request body {name} has no example"
            );
        }
    }

    #[test]
    fn every_successful_json_answer_under_v1_has_an_example() {
        let doc = document();
        let mut missing = Vec::new();
        for (method, path, op) in operations(&doc) {
            if !path.starts_with("/v1/") {
                continue;
            }
            for status in ["200", "201"] {
                let json = &op["responses"][status]["content"]["application/json"];
                if json.is_null() {
                    continue;
                }
                let component = json["schema"]["$ref"]
                    .as_str()
                    .and_then(|r| r.rsplit('/').next())
                    .map(|name| &doc["components"]["schemas"][name]);
                let has_example = !json["example"].is_null()
                    || json["examples"].is_object()
                    || component.is_some_and(|c| c["examples"].is_array());
                if !has_example {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "answers without an example:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn template_names_reads_every_placeholder() {
        assert_eq!(
            template_names("/v1/admin/decisions/{request_id}/fix"),
            HashSet::from(["request_id".to_owned()])
        );
        assert!(template_names("/v1/admin/users").is_empty());
    }
}
