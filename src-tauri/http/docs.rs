//! The OpenAPI document (generated from the handlers) and a docs page that ships inside the
//! binary: no assets are fetched at build time or from a CDN at run time.

use axum::response::Html;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate API", description = "Accounts, API keys, plans, usage metering and billing."),
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
}

pub async fn page() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tollgate API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:20px}
main{max-width:980px;margin:0 auto;padding:24px 32px}
.op{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:10px 0;padding:12px 16px}
.m{display:inline-block;min-width:64px;font-weight:700;font-family:ui-monospace,monospace}
.get{color:#1a7f37}.post{color:#0b5cad}.patch{color:#9a6700}.delete{color:#cf222e}
code{font-family:ui-monospace,monospace}.p{font-family:ui-monospace,monospace}
.lock{color:#667085;font-size:13px;margin-left:8px}.d{color:#475467;margin:4px 0 0}
.r{font-size:13px;color:#475467}h2{margin-top:28px}
</style></head><body><header><h1>Tollgate API</h1><div id="v"></div></header>
<main><p>The machine-readable document is at <a href="/openapi.json"><code>/openapi.json</code></a>.
Authenticate with <code>Authorization: Bearer &lt;access token or sk_ key&gt;</code>. Errors share one shape:
<code>{"error": {"code", "message", "request_id", …}}</code>.</p><div id="ops">Loading…</div></main>
<script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{
  document.getElementById('v').textContent='OpenAPI '+doc.openapi+' · version '+doc.info.version;
  const byTag={};
  for(const [path,item] of Object.entries(doc.paths)){for(const [m,op] of Object.entries(item)){
    const t=(op.tags&&op.tags[0])||'other';(byTag[t]=byTag[t]||[]).push([m,path,op]);}}
  const out=document.getElementById('ops');out.textContent='';
  for(const [tag,ops] of Object.entries(byTag)){
    const h=document.createElement('h2');h.textContent=tag;out.appendChild(h);
    for(const [m,path,op] of ops){
      const d=document.createElement('div');d.className='op';
      const head=document.createElement('div');
      const ms=document.createElement('span');ms.className='m '+m;ms.textContent=m.toUpperCase();
      const ps=document.createElement('span');ps.className='p';ps.textContent=path;
      head.append(ms,ps);
      if(op.security){const l=document.createElement('span');l.className='lock';l.textContent='bearer';head.append(l);}
      const desc=document.createElement('p');desc.className='d';desc.textContent=op.summary||op.description||'';
      const rs=document.createElement('div');rs.className='r';
      rs.textContent='Responses: '+Object.entries(op.responses||{}).map(([s,r])=>s+(r.description?' '+r.description:'')).join(' · ');
      d.append(head,desc,rs);out.appendChild(d);}
  }
}).catch(e=>{document.getElementById('ops').textContent='Could not load /openapi.json: '+e;});
</script></body></html>"##;
