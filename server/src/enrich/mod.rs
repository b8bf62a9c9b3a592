//! Enrichment at ingest: everything derived from an event's raw request data before it is stored.
//!
//! One [`Enricher`] is built at start-up and shared (`Arc<Enricher>`) by the ingest handlers. It owns
//! the pieces, each in its own module:
//!
//! * [`ua`]: user agent → browser, OS, device type (uap-core rules), cached per UA string;
//! * [`bots`]: bot detection (`isbot`) and our bot-type classification;
//! * [`geo`]: IP → country/region/city from an in-memory MaxMind-format database;
//! * [`url`]: page URL → hostname, path, query, UTM tags, click-id type; secrets dropped;
//! * [`referrer`]: referrer → domain, channel category, spam verdict;
//! * [`pii`]: redaction of e-mails, phone and card numbers in free text.
//!
//! Raw IPs and user agents go in and never come out: only the derived fields are returned.

pub mod bots;
pub mod geo;
pub mod pii;
pub mod referrer;
pub mod ua;
pub mod url;

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use self::geo::GeoInfo;
pub use self::referrer::ReferrerInfo;
pub use self::ua::ClientInfo;
pub use self::url::{PageFields, DEFAULT_DROP_QUERY_PARAMS};

#[derive(Debug, Clone, PartialEq)]
pub struct EnrichConfig {
    /// A MaxMind-format database (GeoLite2/GeoIP2 Country or City, DB-IP) to use instead of the
    /// bundled DB-IP country database.
    pub geoip_database: Option<PathBuf>,
    /// Query parameters removed from stored query strings, matched without regard to case.
    pub drop_query_params: Vec<String>,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        Self {
            geoip_database: None,
            drop_query_params: DEFAULT_DROP_QUERY_PARAMS.iter().map(|p| (*p).to_string()).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error(transparent)]
    UserAgentRules(#[from] ua::UaError),
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
}

/// Derives stored fields from raw event data. `Send + Sync`; build once with [`Enricher::new`].
pub struct Enricher {
    clients: ua::CachedUaParser,
    geo: geo::GeoLookup,
    pages: url::CachedPageParser,
    referrers: referrer::ReferrerClassifier,
}

impl Enricher {
    /// Compiles the user-agent rules and loads the GeoIP database: tens to hundreds of milliseconds,
    /// so call it once at start-up.
    pub fn new(config: &EnrichConfig) -> Result<Self, EnrichError> {
        let geo = match &config.geoip_database {
            Some(path) => geo::GeoLookup::open(path)?,
            None => geo::GeoLookup::bundled()?,
        };
        Ok(Self {
            clients: ua::CachedUaParser::new(ua::UaParser::new()?, ua::CACHE_CAPACITY),
            geo,
            pages: url::CachedPageParser::new(url::PageParser::new(&config.drop_query_params), url::CACHE_CAPACITY),
            referrers: referrer::ReferrerClassifier::default(),
        })
    }

    /// Browser, OS, device and bot fields of a user agent, cached by UA string.
    pub fn client(&self, user_agent: &str) -> Arc<ClientInfo> {
        self.clients.parse(user_agent)
    }

    /// Location of an IP address, looked up in memory; the IP is not kept.
    pub fn geo(&self, ip: IpAddr) -> GeoInfo {
        self.geo.lookup(ip)
    }

    /// Fields of a page URL; `None` unless it is an absolute http(s) URL.
    pub fn page(&self, url: &str) -> Option<PageFields> {
        self.pages.parse(url)
    }

    /// Domain, channel and spam verdict of a referrer, judged against the page it led to.
    pub fn referrer(&self, referrer: Option<&str>, page: &PageFields) -> ReferrerInfo {
        self.referrers.classify(referrer, page)
    }

    /// Redacts e-mail addresses, phone numbers and card numbers (see [`pii`]).
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        pii::scrub(text)
    }

    /// The parser behind [`client`](Self::client), for measuring uncached parses.
    pub fn uncached_user_agents(&self) -> &ua::UaParser {
        self.clients.uncached()
    }
}

/// Splits a page URL with the default dropped parameters. Returns `None` when it is not an absolute
/// http(s) URL. Kept for callers that have no [`Enricher`] yet.
pub fn page_fields(raw: &str) -> Option<PageFields> {
    url::PageParser::default().parse(raw)
}

/// The referrer's host, lower-cased and without `www.`; `None` for empty or non-URL referrers.
pub fn referrer_domain(referrer: &str) -> Option<String> {
    referrer::domain(referrer)
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;
    use std::time::Instant;

    use super::*;

    static ENRICHER: LazyLock<Enricher> = LazyLock::new(|| {
        let started = Instant::now();
        let enricher = Enricher::new(&EnrichConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("Enricher::new took {:?}", started.elapsed());
        enricher
    });

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn enricher_is_shareable() {
        assert_send_sync::<Enricher>();
        assert_send_sync::<Arc<ClientInfo>>();
    }

    #[test]
    fn a_whole_event() {
        let e = &*ENRICHER;
        let page = e
            .page("https://www.example.com/checkout?email=a%40b.com&utm_source=google&utm_medium=cpc&gclid=XYZ&step=2")
            .unwrap_or_default();
        assert_eq!(page.query_string.as_deref(), Some("utm_source=google&utm_medium=cpc&gclid&step=2"));
        assert_eq!(page.click_id_type.as_deref(), Some("gclid"));
        let referrer = e.referrer(Some("https://www.google.com/"), &page);
        assert_eq!((referrer.domain.as_deref(), referrer.category), (Some("google.com"), "paid"));
        let client = e.client("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1");
        assert_eq!(client.device_type.as_deref(), Some("mobile"));
        assert!(!client.is_bot);
        assert_eq!(
            e.geo("8.8.8.8".parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))).country_code.as_deref(),
            Some("US")
        );
        assert_eq!(e.scrub("Thanks, jane@example.org!"), "Thanks, [email]!");
    }

    #[test]
    fn shared_across_threads() {
        let e = &*ENRICHER;
        let uas: Vec<String> = (0..64)
            .map(|i| format!("Mozilla/5.0 (X11; Linux x86_64; rv:{i}.0) Gecko/20100101 Firefox/{i}.0"))
            .collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for ua in &uas {
                        assert_eq!(e.client(ua).browser_name.as_deref(), Some("Firefox"));
                    }
                });
            }
        });
    }

    #[test]
    fn configured_drop_list_replaces_the_default() {
        let config = EnrichConfig { drop_query_params: vec!["Q".into()], ..EnrichConfig::default() };
        let e = Enricher::new(&config).unwrap_or_else(|err| panic!("{err}"));
        let page = e.page("https://a.com/?q=x&token=t").unwrap_or_default();
        assert_eq!(page.query_string.as_deref(), Some("token=t"));
    }

    #[test]
    fn a_bad_geoip_path_fails_start_up() {
        let config = EnrichConfig { geoip_database: Some("/nonexistent.mmdb".into()), ..EnrichConfig::default() };
        assert!(matches!(Enricher::new(&config), Err(EnrichError::Geo(_))));
    }

    #[test]
    fn legacy_free_functions() {
        let f = page_fields("https://Example.com/pricing?utm_source=news&utm_medium=email&x=1#top").unwrap_or_default();
        assert_eq!(f.hostname.as_deref(), Some("example.com"));
        assert_eq!(f.query_string.as_deref(), Some("utm_source=news&utm_medium=email&x=1"));
        assert_eq!(referrer_domain("https://www.google.com/search?q=x").as_deref(), Some("google.com"));
        assert_eq!(referrer_domain(""), None);
    }
}
