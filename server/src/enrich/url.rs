//! Fields derived from the page URL: hostname, path, query string, UTM parameters and the ad click id.
//!
//! What is stored is what an analyst needs and no more: secrets that sites put in query strings
//! (`token=`, `email=`, ...) are dropped, click-id values (which identify one ad click, and so one
//! person) are removed while their type is kept, and what remains of path and query goes through
//! [`pii::scrub`](super::pii::scrub).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use url::Url;

use super::pii;

/// Query parameters dropped from stored query strings unless the operator configures others: names
/// under which sites commonly pass credentials, one-time codes or contact details. Matched without
/// regard to case.
pub const DEFAULT_DROP_QUERY_PARAMS: &[&str] = &[
    "email",
    "e-mail",
    "mail",
    "password",
    "pass",
    "pwd",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "auth",
    "api_key",
    "apikey",
    "key",
    "secret",
    "client_secret",
    "sessionid",
    "session_id",
    "sid",
    "code",
    "otp",
    "phone",
    "tel",
];

/// Ad-platform click identifiers, in the order they are looked for. Google's `gclid`, `dclid`, `wbraid`
/// and `gbraid`; Meta's `fbclid`; Microsoft's `msclkid`; TikTok's `ttclid`; LinkedIn's `li_fat_id`;
/// X's `twclid`.
pub const CLICK_ID_PARAMS: &[&str] =
    &["gclid", "fbclid", "msclkid", "ttclid", "li_fat_id", "twclid", "dclid", "wbraid", "gbraid"];

#[derive(Debug, Default, Clone, PartialEq)]
pub struct PageFields {
    /// `http` or `https` (empty only in a default value).
    pub scheme: &'static str,
    /// An explicit port that is not the scheme's default.
    pub port: Option<u16>,
    pub hostname: Option<String>,
    pub path: Option<String>,
    /// Without dropped parameters and click-id values, scrubbed of PII; `None` when nothing is left.
    pub query_string: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// Which click id the URL carried (`gclid`, `fbclid`, ...); the first one found if several.
    pub click_id_type: Option<String>,
}

/// Splits page URLs; built once with the configured list of dropped query parameters.
#[derive(Debug, Clone)]
pub struct PageParser {
    /// Lower-cased parameter names.
    drop_query_params: HashSet<String>,
}

impl Default for PageParser {
    fn default() -> Self {
        Self::new(DEFAULT_DROP_QUERY_PARAMS)
    }
}

impl PageParser {
    pub fn new<S: AsRef<str>>(drop_query_params: &[S]) -> Self {
        Self { drop_query_params: drop_query_params.iter().map(|p| p.as_ref().to_lowercase()).collect() }
    }

    /// Splits a page URL. Returns `None` when it is not an absolute http(s) URL.
    ///
    /// A fragment that is a route (`#/about`, `#!/about`: hash-routed single-page apps, which the
    /// tracker reports with `data-hash`) stays part of the path; any other fragment is dropped.
    pub fn parse(&self, raw: &str) -> Option<PageFields> {
        let url = Url::parse(raw).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let scheme = if url.scheme() == "https" { "https" } else { "http" };
        let mut fields = PageFields {
            scheme,
            port: url.port(),
            hostname: url.host_str().map(|h| h.to_ascii_lowercase()),
            path: Some(pii::scrub(&route_path(&url)).into_owned()),
            ..Default::default()
        };
        let mut kept: Vec<Cow<'_, str>> = Vec::new();
        for pair in url.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode_component(raw_key).to_lowercase();
            if let Some(click_id) = CLICK_ID_PARAMS.iter().find(|c| **c == key) {
                fields.click_id_type.get_or_insert_with(|| (*click_id).to_string());
                kept.push(Cow::Borrowed(raw_key));
                continue;
            }
            if self.drop_query_params.contains(&key) {
                continue;
            }
            let value = || Some(pii::scrub(&decode_component(raw_value)).into_owned()).filter(|v| !v.is_empty());
            match key.as_str() {
                "utm_source" => fields.utm_source = value(),
                "utm_medium" => fields.utm_medium = value(),
                "utm_campaign" => fields.utm_campaign = value(),
                "utm_term" => fields.utm_term = value(),
                "utm_content" => fields.utm_content = value(),
                // Plausible's shorthand for utm_source; a real utm_source wins wherever it appears.
                "ref" | "source" if fields.utm_source.is_none() => fields.utm_source = value(),
                _ => {}
            }
            kept.push(pii::scrub(pair));
        }
        if !kept.is_empty() {
            fields.query_string = Some(kept.join("&"));
        }
        Some(fields)
    }
}

/// How many distinct page URLs [`CachedPageParser`] keeps parsed.
pub const CACHE_CAPACITY: usize = 16_384;
/// Longer URLs are parsed every time: they are rarely repeated, and would crowd the cache.
const MAX_CACHED_URL_LEN: usize = 512;

/// [`PageParser`] with a cache by URL: a site's traffic repeats a few thousand URLs, and parsing
/// plus PII scrubbing costs about a microsecond each time.
pub struct CachedPageParser {
    parser: PageParser,
    cache: quick_cache::sync::Cache<String, Option<Arc<PageFields>>>,
}

impl CachedPageParser {
    pub fn new(parser: PageParser, capacity: usize) -> Self {
        Self { parser, cache: quick_cache::sync::Cache::new(capacity) }
    }

    pub fn parse(&self, raw: &str) -> Option<PageFields> {
        if raw.len() > MAX_CACHED_URL_LEN {
            return self.parser.parse(raw);
        }
        if let Some(hit) = self.cache.get(raw) {
            return hit.as_deref().cloned();
        }
        let fields = self.parser.parse(raw);
        self.cache.insert(raw.to_string(), fields.clone().map(Arc::new));
        fields
    }
}

/// Decodes one `application/x-www-form-urlencoded` key or value (`+` is a space).
fn decode_component(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['%', '+']) {
        return Cow::Borrowed(raw);
    }
    let spaced = raw.replace('+', " ");
    Cow::Owned(percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
}

fn route_path(url: &Url) -> Cow<'_, str> {
    match url.fragment() {
        Some(f) if f.starts_with('/') || f.starts_with("!/") => Cow::Owned(format!("{}#{f}", url.path())),
        _ => Cow::Borrowed(url.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> PageFields {
        PageParser::default().parse(url).unwrap_or_else(|| panic!("{url} should parse"))
    }

    #[test]
    fn the_cache_answers_what_the_parser_does_with_the_configured_parameters() {
        let cached = CachedPageParser::new(PageParser::new(&["ticket"]), 4);
        let long = format!("https://example.com/{}?ticket=1&q=2", "a".repeat(MAX_CACHED_URL_LEN));
        for url in ["https://example.com:8443/a?ticket=9&q=1&gclid=x", "ftp://example.com/", long.as_str()] {
            for _ in 0..2 {
                assert_eq!(cached.parse(url), PageParser::new(&["ticket"]).parse(url), "{url}");
            }
        }
        let f = cached.parse("https://example.com:8443/a?ticket=9&q=1&gclid=x").unwrap_or_default();
        assert_eq!((f.scheme, f.port, f.query_string.as_deref()), ("https", Some(8443), Some("q=1&gclid")));
    }

    #[test]
    fn splits_urls_and_reads_utm() {
        let f = parse("https://Example.com/pricing?utm_source=news&utm_medium=email&x=1#top");
        assert_eq!(f.hostname.as_deref(), Some("example.com"));
        assert_eq!(f.path.as_deref(), Some("/pricing"));
        assert_eq!(f.query_string.as_deref(), Some("utm_source=news&utm_medium=email&x=1"));
        assert_eq!(f.utm_source.as_deref(), Some("news"));
        assert_eq!(f.utm_medium.as_deref(), Some("email"));
        assert_eq!(f.utm_campaign, None);
        assert_eq!(f.click_id_type, None);
        assert_eq!(parse("https://a.com/?ref=hn").utm_source.as_deref(), Some("hn"));
        assert_eq!(parse("https://a.com/?source=x&utm_source=y").utm_source.as_deref(), Some("y"));
        assert_eq!(parse("https://a.com/?utm_source=y&ref=x").utm_source.as_deref(), Some("y"));
        assert_eq!(
            parse("https://a.com/?UTM_Campaign=Black+Friday%202024").utm_campaign.as_deref(),
            Some("Black Friday 2024")
        );
        let parser = PageParser::default();
        assert!(parser.parse("javascript:alert(1)").is_none());
        assert!(parser.parse("/relative").is_none());
        assert!(parser.parse("ftp://example.com/file").is_none());
        assert!(parser.parse("").is_none());
    }

    #[test]
    fn empty_queries() {
        assert_eq!(parse("https://a.com/").query_string, None);
        assert_eq!(parse("https://a.com/?").query_string, None);
        assert_eq!(parse("https://a.com/?token=abc").query_string, None);
        assert_eq!(parse("https://a.com/?&&a=1&").query_string.as_deref(), Some("a=1"));
    }

    #[test]
    fn click_ids_keep_their_type_not_their_value() {
        let f = parse("https://shop.example/landing?gclid=EAIaIQobChMI8fake&utm_campaign=spring");
        assert_eq!(f.click_id_type.as_deref(), Some("gclid"));
        assert_eq!(f.query_string.as_deref(), Some("gclid&utm_campaign=spring"));
        assert_eq!(f.utm_campaign.as_deref(), Some("spring"));
        for id in CLICK_ID_PARAMS {
            let f = parse(&format!("https://a.com/?{id}=SECRET123&x=1"));
            assert_eq!(f.click_id_type.as_deref(), Some(*id));
            assert_eq!(f.query_string, Some(format!("{id}&x=1")));
        }
        // The first click id wins; case does not matter.
        let f = parse("https://a.com/?FBCLID=1&gclid=2");
        assert_eq!(f.click_id_type.as_deref(), Some("fbclid"));
        assert_eq!(f.query_string.as_deref(), Some("FBCLID&gclid"));
    }

    #[test]
    fn dropped_params_are_case_insensitive_and_configurable() {
        let f = parse("https://a.com/reset?Token=abc&EMAIL=a%40b.com&page=2&api_key=k&Code=123456");
        assert_eq!(f.query_string.as_deref(), Some("page=2"));
        let custom = PageParser::new(&["Page"]);
        let f = custom.parse("https://a.com/?page=2&token=abc").unwrap_or_default();
        assert_eq!(f.query_string.as_deref(), Some("token=abc"));
        let none: &[&str] = &[];
        let f = PageParser::new(none).parse("https://a.com/?email=x").unwrap_or_default();
        assert_eq!(f.query_string.as_deref(), Some("email=x"));
    }

    #[test]
    fn pii_is_scrubbed_from_path_query_and_utm() {
        let f = parse(
            "https://a.com/users/john.doe@example.com/orders?contact=jane%40example.org&ph=%2B4915112345678&q=shoes",
        );
        assert_eq!(f.path.as_deref(), Some("/users/[email]/orders"));
        assert_eq!(f.query_string.as_deref(), Some("contact=[email]&ph=[phone]&q=shoes"));
        let f = parse("https://a.com/?utm_content=john%40example.com");
        assert_eq!(f.utm_content.as_deref(), Some("[email]"));
        assert_eq!(f.query_string.as_deref(), Some("utm_content=[email]"));
        // Ids in paths are not phones.
        assert_eq!(parse("https://a.com/product/123456789").path.as_deref(), Some("/product/123456789"));
    }

    #[test]
    fn hash_routes_stay_in_the_path_and_anchors_do_not() {
        let parser = PageParser::default();
        assert_eq!(parser.parse("https://a.com/#/about?x=1").and_then(|p| p.path).as_deref(), Some("/#/about?x=1"));
        assert_eq!(parser.parse("https://a.com/app#!/users").and_then(|p| p.path).as_deref(), Some("/app#!/users"));
        assert_eq!(parser.parse("https://a.com/docs#install").and_then(|p| p.path).as_deref(), Some("/docs"));
    }
}
