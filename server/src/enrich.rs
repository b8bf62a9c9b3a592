//! Fields derived from the page URL and referrer at ingest: hostname, path, query string, UTM
//! parameters and the referrer's domain.

use url::Url;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct PageFields {
    pub hostname: Option<String>,
    pub path: Option<String>,
    pub query_string: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
}

/// Splits a page URL. Returns `None` when it is not an absolute http(s) URL.
pub fn page_fields(raw: &str) -> Option<PageFields> {
    let url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let mut fields = PageFields {
        hostname: url.host_str().map(|h| h.to_ascii_lowercase()),
        path: Some(url.path().to_string()),
        query_string: url.query().filter(|q| !q.is_empty()).map(str::to_string),
        ..Default::default()
    };
    for (key, value) in url.query_pairs() {
        let value = Some(value.into_owned()).filter(|v| !v.is_empty());
        match key.as_ref() {
            "utm_source" => fields.utm_source = value,
            "utm_medium" => fields.utm_medium = value,
            "utm_campaign" => fields.utm_campaign = value,
            "utm_term" => fields.utm_term = value,
            "utm_content" => fields.utm_content = value,
            // Plausible's shorthand for utm_source.
            "ref" | "source" if fields.utm_source.is_none() => fields.utm_source = value,
            _ => {}
        }
    }
    Some(fields)
}

/// The referrer's host, lower-cased and without `www.`; `None` for empty or non-URL referrers.
pub fn referrer_domain(referrer: &str) -> Option<String> {
    let url = Url::parse(referrer).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(host.strip_prefix("www.").map(str::to_string).unwrap_or(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls_and_reads_utm() {
        let f = page_fields("https://Example.com/pricing?utm_source=news&utm_medium=email&x=1#top").unwrap();
        assert_eq!(f.hostname.as_deref(), Some("example.com"));
        assert_eq!(f.path.as_deref(), Some("/pricing"));
        assert_eq!(f.query_string.as_deref(), Some("utm_source=news&utm_medium=email&x=1"));
        assert_eq!(f.utm_source.as_deref(), Some("news"));
        assert_eq!(f.utm_medium.as_deref(), Some("email"));
        assert_eq!(f.utm_campaign, None);
        assert_eq!(page_fields("https://a.com/?ref=hn").unwrap().utm_source.as_deref(), Some("hn"));
        assert!(page_fields("javascript:alert(1)").is_none());
        assert!(page_fields("/relative").is_none());
    }

    #[test]
    fn referrer_domains() {
        assert_eq!(referrer_domain("https://www.google.com/search?q=x").as_deref(), Some("google.com"));
        assert_eq!(referrer_domain("https://news.ycombinator.com/").as_deref(), Some("news.ycombinator.com"));
        assert_eq!(referrer_domain(""), None);
    }
}
