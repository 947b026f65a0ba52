//! The web console: plain HTML, CSS and JavaScript modules built into the binary (nothing is
//! fetched at run time), served under `/console/` by every service process, and talking to the
//! same REST API with the signed-in person's token.
//!
//! Sign-in follows `auth.mode`: in `dev` (as `meridian dev` runs) the console offers the demo
//! organisation's people and `POST /console/login` mints a token for the one chosen; in `jwks`
//! it signs in with the identity provider named by `console.oidc` (authorisation code with PKCE,
//! in the browser).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use meridian_chassis::Problem;
use meridian_chassis::auth::Authenticator;
use meridian_chassis::problem::{Json, codes};
use serde::{Deserialize, Serialize};

/// One file of the console.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $type:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../console/", $path)),
        }),*]
    };
}

const ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "console.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/app.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/ui.js" => "text/javascript; charset=utf-8",
    "js/login.js" => "text/javascript; charset=utf-8",
    "js/inbox.js" => "text/javascript; charset=utf-8",
    "js/desk.js" => "text/javascript; charset=utf-8",
    "js/cmdb.js" => "text/javascript; charset=utf-8",
    "js/calendar.js" => "text/javascript; charset=utf-8",
    "js/dashboards.js" => "text/javascript; charset=utf-8",
    "js/charts.js" => "text/javascript; charset=utf-8",
};

/// What the console may do and load: its own files and the API on the same origin, plus the
/// identity provider when it signs in with one. No inline script, no framing.
fn security_policy(oidc: Option<&Oidc>) -> String {
    let connect = oidc.map_or_else(String::new, |o| format!(" {}", origin_of(&o.issuer)));
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// `https://idp.example.org/realms/x` → `https://idp.example.org`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |i| &url[..after_scheme + i])
}

/// A weak validator of a file's bytes (FNV-1a), so an unchanged file answers 304.
fn etag(body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

/// A person of the demo organisation, offered by the dev login.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    /// The user id (the token's subject).
    pub id: String,
    /// Their name.
    pub name: String,
    /// Their roles.
    pub roles: Vec<String>,
}

/// The identity provider the console signs in with when tokens come from one (`auth.mode: jwks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Oidc {
    /// The issuer; its `/.well-known/openid-configuration` names the endpoints.
    pub issuer: String,
    /// The console's public client id.
    pub client_id: String,
    /// The scopes asked for.
    pub scope: String,
}

/// How people sign in to the console.
#[derive(Debug, Clone, Default)]
pub struct Console {
    /// The people the dev login offers (`meridian dev`); none outside it.
    pub dev_people: Vec<Person>,
    /// The identity provider, when one is configured.
    pub oidc: Option<Oidc>,
}

/// What the console reads first: how to sign in.
#[derive(Debug, Serialize)]
struct ConsoleConfig<'a> {
    /// `dev` or `oidc`, or `none` when neither is configured (a token can still be pasted).
    login: &'static str,
    people: &'a [Person],
    oidc: Option<&'a Oidc>,
    version: &'static str,
}

/// The body of `POST /console/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevLogin {
    user: String,
}

/// The routes of the console.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(to_console))
        .route("/console", web::get().to(to_console))
        .route("/console/config.json", web::get().to(config))
        .route("/console/login", web::post().to(login))
        .route("/console/{path:.*}", web::get().to(asset));
}

async fn to_console() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

async fn config(console: web::Data<Console>, auth: web::Data<Authenticator>) -> HttpResponse {
    let login = if auth.dev_mode() && !console.dev_people.is_empty() {
        "dev"
    } else if console.oidc.is_some() {
        "oidc"
    } else {
        "none"
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ConsoleConfig {
            login,
            people: if login == "dev" {
                &console.dev_people
            } else {
                &[]
            },
            oidc: console.oidc.as_ref(),
            version: env!("CARGO_PKG_VERSION"),
        })
}

/// The dev login: a token for one of the demo organisation's people, valid eight hours.
async fn login(
    body: Json<DevLogin>,
    console: web::Data<Console>,
    auth: web::Data<Authenticator>,
) -> Result<HttpResponse, Problem> {
    if !auth.dev_mode() || console.dev_people.is_empty() {
        return Err(Problem::new(codes::NOT_FOUND)
            .detail("the dev login exists only in dev mode (meridian dev)"));
    }
    let Some(person) = console.dev_people.iter().find(|p| p.id == body.0.user) else {
        return Err(Problem::field(
            "user",
            format!(
                "must be one of the demo people: {}",
                console
                    .dev_people
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let now = meridian_chassis::Clock::now(&meridian_chassis::SystemClock);
    let ttl = chrono::Duration::hours(8);
    let token = auth
        .mint_dev(&person.id, &person.roles, now, ttl)
        .map_err(|e| Problem::new(codes::INTERNAL).detail(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "token": token,
            "expires_at": (now + ttl).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "user": person,
        })))
}

async fn asset(
    req: HttpRequest,
    path: web::Path<String>,
    console: web::Data<Console>,
) -> HttpResponse {
    let path = path.into_inner();
    let path = if path.is_empty() {
        "index.html"
    } else {
        path.as_str()
    };
    let Some(file) = ASSETS.iter().find(|a| a.path == path) else {
        return Problem::new(codes::NOT_FOUND)
            .detail(format!("the console has no file {path}"))
            .error_response();
    };
    let tag = etag(file.body);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            security_policy(console.oidc.as_ref()),
        ));
    if fresh {
        response.finish()
    } else {
        response.content_type(file.content_type).body(file.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_referenced_files_exist() {
        let index = std::str::from_utf8(ASSETS[0].body).unwrap();
        for asset in ASSETS {
            assert!(!asset.body.is_empty(), "{} is empty", asset.path);
        }
        // Every module the console imports is served.
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line.split('"').nth(1).unwrap();
                let name = target.trim_start_matches("./");
                assert!(
                    ASSETS.iter().any(|a| a.path == format!("js/{name}")),
                    "{} imports {target}, which is not served",
                    asset.path
                );
            }
        }
        for needed in ["console.css", "js/app.js", "favicon.svg"] {
            assert!(index.contains(needed), "index.html does not load {needed}");
        }
    }

    #[test]
    fn the_policy_allows_the_identity_provider_origin_only() {
        let oidc = Oidc {
            issuer: "https://idp.example.org/realms/meridian".to_owned(),
            client_id: "console".to_owned(),
            scope: "openid".to_owned(),
        };
        assert!(
            security_policy(Some(&oidc)).contains("connect-src 'self' https://idp.example.org;")
        );
        assert!(security_policy(None).contains("connect-src 'self';"));
        assert_eq!(origin_of("http://localhost:8080"), "http://localhost:8080");
    }

    use actix_web::test::{TestRequest, call_service, init_service, read_body_json};

    fn people() -> Vec<Person> {
        vec![Person {
            id: "bob".to_owned(),
            name: "Bob Chen".to_owned(),
            roles: vec!["cab".to_owned()],
        }]
    }

    /// The console's routes with `auth` and `console` as the app data.
    macro_rules! app {
        ($auth:expr, $console:expr) => {
            init_service(
                actix_web::App::new()
                    .app_data(web::Data::new($auth))
                    .app_data(web::Data::new($console))
                    .configure(configure),
            )
            .await
        };
    }

    /// What `GET /console/config.json` tells the console.
    macro_rules! console_config {
        ($app:expr) => {{
            let response = call_service(
                &$app,
                TestRequest::get().uri("/console/config.json").to_request(),
            )
            .await;
            let config: serde_json::Value = read_body_json(response).await;
            config
        }};
    }

    #[actix_web::test]
    async fn the_dev_login_mints_a_token_for_a_demo_person_and_names_a_stranger() {
        let auth = Authenticator::new(&meridian_chassis::testing::dev_auth_config()).unwrap();
        let app = app!(
            auth.clone(),
            Console {
                dev_people: people(),
                oidc: None,
            }
        );
        let config = console_config!(app);
        assert_eq!(config["login"], "dev");
        assert_eq!(config["people"][0]["id"], "bob");
        let login = |user: &str| {
            TestRequest::post()
                .uri("/console/login")
                .set_json(serde_json::json!({ "user": user }))
                .to_request()
        };
        let response = call_service(&app, login("bob")).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = read_body_json(response).await;
        let principal = auth.authenticate(body["token"].as_str().unwrap()).unwrap();
        assert_eq!(principal.subject, "bob");
        assert!(principal.has("cab"));
        let stranger = call_service(&app, login("mallory")).await;
        assert_eq!(stranger.status(), 400);
        let problem: serde_json::Value = read_body_json(stranger).await;
        assert_eq!(problem["invalid-params"][0]["name"], "user");
    }

    /// With the identity provider's tokens (`auth.mode: jwks`) there is no dev login, whatever
    /// people are configured; the console is told to sign in with the provider.
    #[actix_web::test]
    async fn outside_dev_mode_there_is_no_dev_login() {
        let jwks =
            std::env::temp_dir().join(format!("meridian-console-{}.json", uuid::Uuid::new_v4()));
        let keys = meridian_chassis::testing::TestKeys::new();
        let auth = Authenticator::new(&keys.auth_config(&jwks)).unwrap();
        std::fs::remove_file(&jwks).unwrap();
        let oidc = Oidc {
            issuer: "https://idp.example.org/realms/meridian".to_owned(),
            client_id: "meridian-console".to_owned(),
            scope: "openid profile".to_owned(),
        };
        let app = app!(
            auth,
            Console {
                dev_people: people(),
                oidc: Some(oidc),
            }
        );
        let config = console_config!(app);
        assert_eq!(config["login"], "oidc");
        assert_eq!(config["people"], serde_json::json!([]));
        assert_eq!(config["oidc"]["client_id"], "meridian-console");
        let login = call_service(
            &app,
            TestRequest::post()
                .uri("/console/login")
                .set_json(serde_json::json!({"user": "bob"}))
                .to_request(),
        )
        .await;
        assert_eq!(login.status(), 404);
        // The policy lets the console reach the provider, and nothing else outside.
        let page = call_service(&app, TestRequest::get().uri("/console/").to_request()).await;
        let policy = page
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("connect-src 'self' https://idp.example.org;"));
    }

    #[actix_web::test]
    async fn files_are_served_with_their_type_and_answer_304_when_unchanged() {
        let auth = Authenticator::new(&meridian_chassis::testing::dev_auth_config()).unwrap();
        let app = app!(auth, Console::default());
        let response = call_service(
            &app,
            TestRequest::get().uri("/console/js/app.js").to_request(),
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/javascript; charset=utf-8"
        );
        let tag = response.headers().get(header::ETAG).unwrap().clone();
        let again = call_service(
            &app,
            TestRequest::get()
                .uri("/console/js/app.js")
                .insert_header((header::IF_NONE_MATCH, tag))
                .to_request(),
        )
        .await;
        assert_eq!(again.status(), 304);
        let missing = call_service(
            &app,
            TestRequest::get()
                .uri("/console/js/../../etc/passwd")
                .to_request(),
        )
        .await;
        assert_eq!(missing.status(), 404);
        let root = call_service(&app, TestRequest::get().uri("/").to_request()).await;
        assert_eq!(root.status(), 302);
        assert_eq!(root.headers().get(header::LOCATION).unwrap(), "/console/");
    }

    #[test]
    fn an_etag_changes_with_the_bytes() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"a"), etag(b"a"));
    }
}
