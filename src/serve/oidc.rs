//! OpenID Connect sign-in for the console: people sign in at their organisation's provider, not
//! with a password fleetpin would have to keep. The authorization code flow with PKCE (S256);
//! `state` and `nonce` kept server-side, single use, ten minutes at most, and bound to the
//! browser that started the sign-in (a cookie only that browser holds, so a code obtained by
//! someone else cannot sign a victim into the attacker's account); the ID token's signature
//! (RS256 or ES256, against the provider's JWKS), `iss`, `aud`, `exp` and `nonce` checked by the
//! `openidconnect` crate; the provider's groups mapped to rights through the configured role
//! mappings. What comes out is who signed in, with which rights (`SignedIn`), nothing else:
//! tokens from the provider are not kept, and no message shows a token or a secret. The routes
//! that make a session of it are `super::signin`; this module knows nothing of the console.
//!
//! Its HTTP goes through the hyper client the rest of fleetpin uses (system roots, no
//! redirects followed, bounded answers and time), not a second HTTP stack.

use super::error as api;
use super::rights::{Grant, Principal};
use super::session::same;
use super::{ServeError, random_id};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError,
    ClientId, ClientSecret, CsrfToken, DiscoveryError, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a sign-in may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// At most this many sign-ins under way: `/auth/login` answers anyone, so memory is bounded.
const PENDING_MAX: usize = 10_000;
/// Clock difference tolerated between the provider and this machine (`exp`, `iat`).
const LEEWAY: Duration = Duration::from_secs(60);
/// The discovery document and keys are read again after this long (key rotation).
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Answers from the provider: time and size.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const HTTP_MAX_BODY: usize = 1 << 20;

/// `serve.yaml`'s `oidc:` section (docs/console.md). The client secret is never in the file:
/// `client_secret_env` names the environment variable that holds it (none: a public client,
/// PKCE alone).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The provider's issuer URL; `{issuer}/.well-known/openid-configuration` is read.
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// This console's `/auth/callback` as the browser reaches it (registered at the provider).
    pub redirect_url: String,
    /// Scopes asked for besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim that lists the person's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Which group gets which role, on which environments (none listed: all).
    #[serde(default)]
    pub roles: Vec<RoleMapping>,
}

/// One group's role: the rights table's own type.
pub use super::rights::RoleMapping;

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

fn default_groups_claim() -> String {
    "groups".into()
}

impl OidcSettings {
    /// Stopgap until `serve.yaml` carries `oidc:`: the same settings from `FLEETPIN_OIDC_*`
    /// (ISSUER turns sign-in on; CLIENT_ID, REDIRECT_URL required; CLIENT_SECRET holds the secret
    /// itself; SCOPES space- or comma-separated; GROUPS_CLAIM; ROLES a YAML or JSON list of
    /// `{group, role, envs}`).
    pub fn from_env(vars: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, ServeError> {
        let var = |n: &str| vars(&format!("FLEETPIN_OIDC_{n}")).filter(|v| !v.trim().is_empty());
        let Some(issuer) = var("ISSUER") else {
            return Ok(None);
        };
        let need = |n: &str| {
            var(n).ok_or_else(|| {
                ServeError::Config(format!(
                    "FLEETPIN_OIDC_ISSUER is set but FLEETPIN_OIDC_{n} is not"
                ))
            })
        };
        let roles = match var("ROLES") {
            None => vec![],
            Some(text) => serde_saphyr::from_str(&text).map_err(|e| {
                ServeError::Config(format!(
                    "FLEETPIN_OIDC_ROLES: a list of {{group, role, envs}} is expected: {e}"
                ))
            })?,
        };
        Ok(Some(OidcSettings {
            issuer,
            client_id: need("CLIENT_ID")?,
            client_secret_env: var("CLIENT_SECRET").map(|_| "FLEETPIN_OIDC_CLIENT_SECRET".into()),
            redirect_url: need("REDIRECT_URL")?,
            scopes: var("SCOPES")
                .map(|s| {
                    s.split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_else(default_scopes),
            groups_claim: var("GROUPS_CLAIM").unwrap_or_else(default_groups_claim),
            roles,
        }))
    }

    /// What the mappings grant to someone in `groups` (empty: no role here).
    pub fn grants(&self, groups: &[String]) -> Vec<Grant> {
        let mut grants: Vec<Grant> = vec![];
        for m in &self.roles {
            if groups.contains(&m.group) {
                let g = Grant {
                    role: m.role,
                    envs: m.envs.clone(),
                };
                if !grants.contains(&g) {
                    grants.push(g);
                }
            }
        }
        grants
    }
}

/// How browsers reach the server, for the cookies' `Secure`: TLS here, a public URL in https,
/// or a proxy in front (trusted by address or CIDR block) that says `https`.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub tls: bool,
    /// serve.yaml's `trusted_proxies`: addresses and blocks (`10.0.0.0/8`).
    pub trusted_proxies: Vec<super::config::IpRange>,
    /// serve.yaml's `public_url` is https: browsers reach the console over TLS, wherever it ends.
    pub public_https: bool,
}

impl Transport {
    /// Whether `peer`'s forwarded headers are believed: it is in one of the trusted blocks.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|r| r.contains(peer))
    }

    /// Whether the browser talks HTTPS to us: TLS here, a public URL in https, or a trusted
    /// proxy that says so.
    pub fn secure(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
        if self.tls || self.public_https {
            return true;
        }
        let trusted = peer.is_some_and(|p| self.trusts(p.ip()));
        trusted && forwarded_https(headers)
    }
}

/// The ID token's claims beyond the standard ones (the groups claim is named by the settings).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Extra {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for Extra {}

type Fields = IdTokenFields<
    Extra,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcClient = openidconnect::Client<
    Extra,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<Fields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A sign-in under way: what the callback must find again.
struct Pending {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    next: String,
    /// SHA-256 of the browser's `fleetpin_signin` cookie.
    browser: String,
    started: Instant,
}

/// The configured sign-in.
pub struct Oidc {
    settings: OidcSettings,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    secret: Option<ClientSecret>,
    transport: Transport,
    /// The browser reaches this console over HTTPS (its redirect URL says so).
    public_https: bool,
    http: Http,
    discovered: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
    pending: Mutex<HashMap<String, Pending>>,
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn is_loopback(url: &openidconnect::url::Url) -> bool {
    match url.host() {
        Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
        Some(openidconnect::url::Host::Ipv4(a)) => a.is_loopback(),
        Some(openidconnect::url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

impl Oidc {
    /// Checks the settings and reads the client secret from the environment (`vars`). The
    /// provider itself is asked at the first sign-in, so the server starts while it is down.
    pub fn new(
        settings: OidcSettings,
        vars: &dyn Fn(&str) -> Option<String>,
        transport: Transport,
    ) -> Result<Oidc, ServeError> {
        let bad = |what: &str, why: String| ServeError::Config(format!("oidc.{what}: {why}"));
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| bad("issuer", format!("not a URL: {e}")))?;
        if issuer.url().scheme() != "https" && !is_loopback(issuer.url()) {
            return Err(bad(
                "issuer",
                "must be https:// (plain http only on the loopback, for tests)".into(),
            ));
        }
        let redirect = RedirectUrl::new(settings.redirect_url.clone())
            .map_err(|e| bad("redirect_url", format!("not a URL: {e}")))?;
        let public_https = redirect.url().scheme() == "https";
        if settings.client_id.is_empty() {
            return Err(bad("client_id", "is empty".into()));
        }
        let secret = match &settings.client_secret_env {
            None => None,
            Some(name) => match vars(name) {
                Some(s) if !s.is_empty() => Some(ClientSecret::new(s)),
                _ => {
                    return Err(bad(
                        "client_secret_env",
                        format!(
                            "{name} is not set (it names the variable holding the client secret)"
                        ),
                    ));
                }
            },
        };
        if settings.roles.is_empty() {
            tracing::warn!("oidc: no role mappings, so no one can sign in through the provider");
        }
        Ok(Oidc {
            settings,
            issuer,
            redirect,
            secret,
            transport,
            public_https,
            http: Http::new()?,
            discovered: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The client, from the provider's metadata (read again when older than an hour, or when
    /// `fresh`: a key the ID token names is not in the cached set).
    async fn client(&self, fresh: bool) -> Result<OidcClient, SignInError> {
        let mut cached = self.discovered.lock().await;
        let stale = match &*cached {
            Some((at, _)) => fresh || at.elapsed() > DISCOVERY_TTL,
            None => true,
        };
        if stale {
            let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
                .await
                .map_err(discovery_error)?;
            *cached = Some((Instant::now(), metadata));
        }
        let Some((_, metadata)) = &*cached else {
            unreachable!("discovered above")
        };
        let basic = match metadata.token_endpoint_auth_methods_supported() {
            // The spec's default when the provider says nothing.
            None => true,
            Some(methods) => {
                methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    || !methods.contains(&CoreClientAuthMethod::ClientSecretPost)
            }
        };
        Ok(OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            self.secret.clone(),
        )
        .set_redirect_uri(self.redirect.clone())
        .set_auth_type(if basic {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        }))
    }

    /// Cookies carry `Secure` when the browser talks HTTPS to us: TLS here, a public URL in
    /// https, or a trusted proxy that says so.
    pub fn secure(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
        self.public_https || self.transport.secure(headers, peer)
    }

    fn remember(&self, state: &str, p: Pending) -> Result<(), SignInError> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.started.elapsed() <= PENDING_TTL);
        if map.len() >= PENDING_MAX {
            return Err(SignInError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many sign-ins under way; try again in a few minutes",
            ));
        }
        map.insert(sha(state), p);
        Ok(())
    }

    /// The sign-in `state` names, once: a second answer with the same state finds nothing.
    fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&sha(state))
            .filter(|p| p.started.elapsed() <= PENDING_TTL)
    }

    /// The code exchanged (with the PKCE verifier), the ID token checked: who signed in.
    async fn finish(&self, code: String, p: &Pending) -> Result<Identity, SignInError> {
        let client = self.client(false).await?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| {
                SignInError::new(
                    StatusCode::BAD_GATEWAY,
                    "the provider's metadata has no token endpoint",
                )
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.secret().clone()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let Some(id_token) = answer.id_token() else {
            return Err(SignInError::refused(
                "the provider's answer has no ID token",
            ));
        };
        let (client, claims) = match self.verify(&client, id_token, &p.nonce) {
            // The provider rotated its keys since they were read: read them again, once.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let client = self.client(true).await?;
                let claims = self.verify(&client, id_token, &p.nonce);
                (client, claims)
            }
            other => (client, other),
        };
        let claims = claims.map_err(claims_error)?;
        if let Some(expected) = claims.access_token_hash() {
            let verifier = self.verifier(&client);
            let alg = id_token.signing_alg().map_err(|_| bad_at_hash())?;
            let key = id_token.signing_key(&verifier).map_err(|_| bad_at_hash())?;
            let actual = AccessTokenHash::from_token(answer.access_token(), alg, key)
                .map_err(|_| bad_at_hash())?;
            if actual != *expected {
                return Err(bad_at_hash());
            }
        }
        let extra = &claims.additional_claims().claims;
        let groups = match extra.get(&self.settings.groups_claim) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => vec![],
        };
        let subject = claims.subject().as_str().to_string();
        let id = claims
            .email()
            .map(|e| e.as_str().to_string())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_string()))
            .unwrap_or_else(|| subject.clone());
        Ok(Identity {
            id,
            subject,
            groups,
        })
    }

    fn verifier<'a>(
        &self,
        client: &'a OidcClient,
    ) -> openidconnect::IdTokenVerifier<'a, CoreJsonWebKey> {
        let leeway = chrono::Duration::from_std(LEEWAY).expect("a small duration");
        client
            .id_token_verifier()
            .set_allowed_algs([
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            ])
            // `exp` must be after now, less the leeway; `iat` not after now, plus it.
            .set_time_fn(move || chrono::Utc::now() - leeway)
            .set_issue_time_verifier_fn(move |iat| {
                if iat > chrono::Utc::now() + leeway {
                    Err("issued in the future".into())
                } else {
                    Ok(())
                }
            })
    }

    fn verify(
        &self,
        client: &OidcClient,
        id_token: &openidconnect::IdToken<
            Extra,
            CoreGenderClaim,
            CoreJweContentEncryptionAlgorithm,
            CoreJwsSigningAlgorithm,
        >,
        nonce: &Nonce,
    ) -> Result<openidconnect::IdTokenClaims<Extra, CoreGenderClaim>, ClaimsVerificationError> {
        id_token.claims(&self.verifier(client), nonce).cloned()
    }
}

/// Who the provider says signed in.
#[derive(Debug)]
struct Identity {
    id: String,
    subject: String,
    groups: Vec<String>,
}

/// A sign-in that did not happen: the status and words shown (never a token or a secret).
#[derive(Debug)]
pub struct SignInError {
    status: StatusCode,
    message: String,
}

impl SignInError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        SignInError {
            status,
            message: message.into(),
        }
    }

    fn refused(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
}

impl IntoResponse for SignInError {
    fn into_response(self) -> Response {
        tracing::warn!("sign-in refused: {}", self.message);
        api::error(self.status, &self.message)
    }
}

fn bad_at_hash() -> SignInError {
    SignInError::refused("the ID token does not match the access token (at_hash)")
}

/// Words a provider chose, shown only when short and plain (they come from the network).
fn plain(s: &str) -> String {
    let ok = s.len() <= 200 && s.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if ok {
        s.to_string()
    } else {
        "(unreadable)".to_string()
    }
}

fn discovery_error(e: DiscoveryError<HttpError>) -> SignInError {
    let why = match e {
        DiscoveryError::Request(e) => e.to_string(),
        DiscoveryError::Response(status, _, _) => format!("it answered HTTP {status}"),
        DiscoveryError::Parse(_) => "its discovery document or keys could not be read".into(),
        DiscoveryError::Validation(v) => v,
        DiscoveryError::UrlParse(e) => e.to_string(),
        DiscoveryError::Other(o) => o,
        _ => "unknown error".into(),
    };
    SignInError::new(
        StatusCode::BAD_GATEWAY,
        format!("the OpenID provider could not be used: {why}"),
    )
}

fn token_error(
    e: RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>,
) -> SignInError {
    match e {
        RequestTokenError::ServerResponse(r) => SignInError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the provider refused the code: {}{}",
                plain(r.error().as_ref()),
                r.error_description()
                    .map(|d| format!(" ({})", plain(d)))
                    .unwrap_or_default()
            ),
        ),
        RequestTokenError::Request(e) => SignInError::new(
            StatusCode::BAD_GATEWAY,
            format!("the provider's token endpoint could not be reached: {e}"),
        ),
        // The body may hold tokens: never shown.
        RequestTokenError::Parse(..) => SignInError::new(
            StatusCode::BAD_GATEWAY,
            "the provider's token answer could not be read",
        ),
        RequestTokenError::Other(_) => SignInError::new(
            StatusCode::BAD_GATEWAY,
            "the provider's token answer could not be used",
        ),
    }
}

fn claims_error(e: ClaimsVerificationError) -> SignInError {
    let why = match e {
        ClaimsVerificationError::InvalidAudience(_) => "it was issued to another client (aud)",
        ClaimsVerificationError::InvalidIssuer(_) => "another issuer made it (iss)",
        ClaimsVerificationError::Expired(_) => "it has expired (exp), or was issued in the future",
        ClaimsVerificationError::InvalidNonce(_) => "it belongs to another sign-in (nonce)",
        ClaimsVerificationError::SignatureVerification(_) => "its signature does not verify",
        _ => "it is not valid",
    };
    SignInError::refused(format!("the provider's ID token is refused: {why}"))
}

/// `X-Forwarded-Proto: https` or `Forwarded: proto=https` (the first hop's word).
fn forwarded_https(headers: &HeaderMap) -> bool {
    let first = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if let Some(p) = first(header::HeaderName::from_static("x-forwarded-proto")) {
        return p == "https";
    }
    first(header::FORWARDED).is_some_and(|f| {
        f.split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .any(|(k, v)| k.trim() == "proto" && v.trim().trim_matches('"') == "https")
    })
}

/// The peer's address, when the listener recorded it (trusted proxies are judged by it).
pub fn peer(connect: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<SocketAddr> {
    connect.map(|Extension(ConnectInfo(a))| a)
}

/// The provider's answer at the redirect URL (`/auth/callback?code=…&state=…`).
#[derive(serde::Deserialize)]
pub struct Answer {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// A sign-in started: where the browser goes, and the value of the cookie that binds the
/// sign-in to it.
pub struct Started {
    pub url: String,
    pub browser: String,
}

/// A sign-in that held: who, with which rights, and the path they asked for.
pub struct SignedIn {
    pub principal: Principal,
    pub next: String,
}

impl Oidc {
    /// A sign-in begins: the provider's authorization URL (PKCE, state and nonce), remembered
    /// here for the callback and bound to the browser by `Started::browser`. `next` is a local
    /// path, already checked.
    pub async fn begin(&self, next: String) -> Result<Started, SignInError> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let browser = random_id();
        self.remember(
            state.secret(),
            Pending {
                verifier,
                nonce,
                next,
                browser: sha(&browser),
                started: Instant::now(),
            },
        )?;
        Ok(Started {
            url: url.to_string(),
            browser,
        })
    }

    /// The provider's answer, from the browser whose sign-in cookie is `browser`: the state
    /// known and unused, the same browser, the same issuer, a code exchanged and its ID token
    /// checked, and at least one right from the role mappings.
    pub async fn complete(&self, answer: Answer, browser: &str) -> Result<SignedIn, SignInError> {
        let Some(pending) = answer.state.as_deref().and_then(|s| self.take(s)) else {
            return Err(SignInError::new(
                StatusCode::BAD_REQUEST,
                "unknown, used or expired sign-in (state): sign in again",
            ));
        };
        if !same(&sha(browser), &pending.browser) {
            return Err(SignInError::new(
                StatusCode::BAD_REQUEST,
                "this sign-in was started in another browser, or at another address than the redirect URL: sign in again",
            ));
        }
        // RFC 9207: an answer naming another issuer is a mix-up.
        if answer
            .iss
            .as_deref()
            .is_some_and(|iss| iss != self.settings.issuer && iss != self.issuer.as_str())
        {
            return Err(SignInError::refused(
                "the answer comes from another issuer (iss)",
            ));
        }
        if let Some(error) = &answer.error {
            return Err(SignInError::new(
                StatusCode::FORBIDDEN,
                format!("the provider did not sign you in: {}", plain(error)),
            ));
        }
        let Some(code) = answer.code else {
            return Err(SignInError::new(
                StatusCode::BAD_REQUEST,
                "the provider's answer has no code",
            ));
        };
        let who = self.finish(code, &pending).await?;
        let grants = self.settings.grants(&who.groups);
        if grants.is_empty() {
            return Err(SignInError::new(
                StatusCode::FORBIDDEN,
                "no role for you here",
            ));
        }
        Ok(SignedIn {
            principal: Principal {
                id: who.id,
                subject: who.subject,
                grants,
            },
            next: pending.next,
        })
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// `openidconnect`'s HTTP client over hyper: the system's roots, no redirect followed (an
/// open redirect at the provider must not steer requests elsewhere), answers bounded in time and
/// size.
#[derive(Clone)]
pub struct Http {
    client: HyperClient<Https, Full<Bytes>>,
}

/// Why a request to the provider failed (no URL query, no body: nothing secret).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl Http {
    fn new() -> Result<Http, ServeError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Http {
            client: HyperClient::builder(TokioExecutor::new()).build(https),
        })
    }

    async fn send(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let origin = {
            let u = request.uri();
            format!(
                "{}://{}",
                u.scheme_str().unwrap_or("http"),
                u.authority().map(|a| a.as_str()).unwrap_or("")
            )
        };
        let (parts, body) = request.into_parts();
        let request = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let answer = tokio::time::timeout(HTTP_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| HttpError(format!("{origin} did not answer within {HTTP_TIMEOUT:?}")))?
            .map_err(|e| HttpError(format!("{origin}: {e}")))?;
        let (parts, body) = answer.into_parts();
        let body = tokio::time::timeout(HTTP_TIMEOUT, Limited::new(body, HTTP_MAX_BODY).collect())
            .await
            .map_err(|_| HttpError(format!("{origin} did not finish its answer in time")))?
            .map_err(|_| HttpError(format!("{origin}: an answer too large or cut")))?
            .to_bytes();
        Ok(openidconnect::http::Response::from_parts(
            parts,
            body.to_vec(),
        ))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::rights::Role;
    use axum::http::HeaderValue;

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: "https://id.acme.example".into(),
            client_id: "fleetpin".into(),
            client_secret_env: Some("SECRET".into()),
            redirect_url: "http://127.0.0.1:8420/auth/callback".into(),
            scopes: default_scopes(),
            groups_claim: default_groups_claim(),
            roles: vec![
                RoleMapping {
                    group: "ops".into(),
                    role: Role::Deploy,
                    envs: Some(vec!["prod".into()]),
                },
                RoleMapping {
                    group: "dev".into(),
                    role: Role::View,
                    envs: None,
                },
            ],
        }
    }

    #[test]
    fn groups_map_to_grants_and_none_to_nothing() {
        let s = settings();
        assert_eq!(
            s.grants(&["ops".into(), "dev".into(), "ops".into()]),
            vec![
                Grant {
                    role: Role::Deploy,
                    envs: Some(vec!["prod".into()])
                },
                Grant {
                    role: Role::View,
                    envs: None
                },
            ]
        );
        assert!(s.grants(&["marketing".into()]).is_empty());
        assert!(s.grants(&[]).is_empty());
    }

    #[test]
    fn settings_read_from_yaml_with_defaults() {
        let s: OidcSettings = serde_saphyr::from_str(
            "issuer: https://id.acme.example\nclient_id: fleetpin\nclient_secret_env: SECRET\n\
             redirect_url: http://127.0.0.1:8420/auth/callback\n\
             roles:\n  - {group: ops, role: deploy, envs: [prod]}\n  - {group: dev, role: view}\n",
        )
        .unwrap();
        assert_eq!(s, settings());
        assert!(
            serde_saphyr::from_str::<OidcSettings>(
                "issuer: x\nclient_id: y\nredirect_url: z\nsecret: no\n"
            )
            .is_err(),
            "a secret in the file is refused"
        );
    }

    #[test]
    fn the_stopgap_environment_gives_the_same_settings() {
        let env: HashMap<&str, &str> = [
            ("FLEETPIN_OIDC_ISSUER", "https://id.acme.example"),
            ("FLEETPIN_OIDC_CLIENT_ID", "fleetpin"),
            ("FLEETPIN_OIDC_CLIENT_SECRET", "s3cret"),
            ("FLEETPIN_OIDC_REDIRECT_URL", "http://127.0.0.1:8420/auth/callback"),
            ("FLEETPIN_OIDC_ROLES", r#"[{"group": "ops", "role": "deploy", "envs": ["prod"]}, {"group": "dev", "role": "view"}]"#),
        ]
        .into();
        let vars = |k: &str| env.get(k).map(|v| v.to_string());
        let mut expected = settings();
        expected.client_secret_env = Some("FLEETPIN_OIDC_CLIENT_SECRET".into());
        assert_eq!(OidcSettings::from_env(&vars).unwrap(), Some(expected));
        assert_eq!(OidcSettings::from_env(&|_| None).unwrap(), None);
        let no_id = |k: &str| (k == "FLEETPIN_OIDC_ISSUER").then(|| "https://x".to_string());
        assert!(OidcSettings::from_env(&no_id).is_err());
    }

    #[test]
    fn the_settings_are_checked_and_the_secret_comes_from_the_environment() {
        let vars = |k: &str| (k == "SECRET").then(|| "s3cret".to_string());
        assert!(Oidc::new(settings(), &vars, Transport::default()).is_ok());
        let e = Oidc::new(settings(), &|_| None, Transport::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("SECRET is not set"), "{e}");
        let mut plain_http = settings();
        plain_http.issuer = "http://id.acme.example".into();
        assert!(Oidc::new(plain_http, &vars, Transport::default()).is_err());
        let mut loopback = settings();
        loopback.issuer = "http://127.0.0.1:9000".into();
        assert!(Oidc::new(loopback, &vars, Transport::default()).is_ok());
    }

    #[test]
    fn cookies_are_secure_over_https_only() {
        let vars = |k: &str| (k == "SECRET").then(|| "s3cret".to_string());
        let proxy: SocketAddr = "10.0.0.5:40000".parse().unwrap();
        let other: SocketAddr = "10.0.0.6:40000".parse().unwrap();
        let transport = Transport {
            tls: false,
            trusted_proxies: vec!["10.0.0.5".parse().unwrap()],
            ..Default::default()
        };
        let oidc = Oidc::new(settings(), &vars, transport.clone()).unwrap();
        let mut https = HeaderMap::new();
        https.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(!oidc.secure(&HeaderMap::new(), Some(proxy)));
        assert!(oidc.secure(&https, Some(proxy)));
        assert!(
            !oidc.secure(&https, Some(other)),
            "an untrusted peer's word"
        );
        let mut forwarded = HeaderMap::new();
        forwarded.insert(
            "forwarded",
            HeaderValue::from_static("for=1.2.3.4;proto=https"),
        );
        assert!(oidc.secure(&forwarded, Some(proxy)));
        // A block trusts every address in it, not only its first.
        let block = Transport {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        assert!(block.secure(&https, Some("10.200.3.4:1".parse().unwrap())));
        assert!(!block.secure(&https, Some("11.0.0.1:1".parse().unwrap())));
        assert!(!block.secure(&HeaderMap::new(), Some(proxy)));
        let public = Transport {
            public_https: true,
            ..Default::default()
        };
        assert!(public.secure(&HeaderMap::new(), None));
        let tls = Oidc::new(
            settings(),
            &vars,
            Transport {
                tls: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(tls.secure(&HeaderMap::new(), None));
        let mut public = settings();
        public.redirect_url = "https://fleet.acme.example/auth/callback".into();
        assert!(
            Oidc::new(public, &vars, Transport::default())
                .unwrap()
                .secure(&HeaderMap::new(), None)
        );
    }

    #[test]
    fn a_state_serves_once_and_expires() {
        let vars = |k: &str| (k == "SECRET").then(|| "s3cret".to_string());
        let oidc = Oidc::new(settings(), &vars, Transport::default()).unwrap();
        let pending = |started| Pending {
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            nonce: Nonce::new("n".into()),
            next: "/".into(),
            browser: sha("b"),
            started,
        };
        oidc.remember("s1", pending(Instant::now())).unwrap();
        assert!(oidc.take("s2").is_none());
        assert!(oidc.take("s1").is_some());
        assert!(oidc.take("s1").is_none(), "single use");
        if let Some(old) = Instant::now().checked_sub(PENDING_TTL + Duration::from_secs(1)) {
            oidc.remember("s3", pending(old)).unwrap();
            assert!(oidc.take("s3").is_none(), "expired");
        }
    }
}
