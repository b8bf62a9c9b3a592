//! Where a visit came from: the referrer's domain, its channel (`referrer_category`) and whether it is
//! referrer spam.
//!
//! The well-known referrer databases (Matomo's, Snowplow's) are GPL-licensed or data we cannot ship, so
//! the tables below are our own: short lists of the search engines, social networks and webmail hosts
//! that send most traffic, matched on the registrable domain (public-suffix aware, so `google.co.uk`
//! and `google.de` are both Google).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use url::Url;

use super::url::PageFields;

pub const DIRECT: &str = "direct";
pub const SEARCH: &str = "search";
pub const SOCIAL: &str = "social";
pub const EMAIL: &str = "email";
pub const PAID: &str = "paid";
pub const REFERRAL: &str = "referral";
pub const INTERNAL: &str = "internal";

/// The bundled referrer-spam blocklist, one domain per line.
const SPAM_LIST: &str = include_str!("../../data/referrer-spam.txt");

/// Heuristic spam scores stay below this, so only the blocklist marks a referrer as spam.
const MAX_HEURISTIC_SCORE: f64 = 0.45;

#[derive(Debug, Clone, PartialEq)]
pub struct ReferrerInfo {
    /// The referrer's host, lower-cased, without `www.` (the `referrer_domain` column).
    pub domain: Option<String>,
    /// One of [`DIRECT`], [`SEARCH`], [`SOCIAL`], [`EMAIL`], [`PAID`], [`REFERRAL`], [`INTERNAL`].
    pub category: &'static str,
    pub is_spam: bool,
    /// 1.0 for blocklisted domains; below 0.5 for heuristic suspicion; 0.0 otherwise.
    pub spam_score: f64,
}

/// The referrer's host, lower-cased and without `www.`; `None` for empty or non-URL referrers.
pub fn domain(referrer: &str) -> Option<String> {
    let url = Url::parse(referrer).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(host.strip_prefix("www.").map(str::to_string).unwrap_or(host))
}

/// The part of a host name that one owner registers: `shop.example.co.uk` → `example.co.uk`. IP
/// addresses and single-label hosts (`localhost`) are their own registrable domain.
pub fn registrable_domain(host: &str) -> &str {
    HostParts::new(host).registrable
}

/// A host split along the public-suffix list once, since every rule below asks about some part.
#[derive(Debug, PartialEq)]
struct HostParts<'a> {
    host: &'a str,
    /// `google.co.uk` for `www.google.co.uk`.
    registrable: &'a str,
    /// The registrable domain without its public suffix: `google`.
    brand: &'a str,
    /// The labels left of the registrable domain: `de.search` for `de.search.yahoo.com`.
    subdomain: &'a str,
}

impl<'a> HostParts<'a> {
    fn new(host: &'a str) -> Self {
        let whole = Self { host, registrable: host, brand: host, subdomain: "" };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() {
            return whole;
        }
        let Some(domain) = psl::domain(host.as_bytes()) else {
            return whole;
        };
        // psl returns the tail of the input, so byte lengths locate the parts; `get` keeps a
        // surprise from panicking.
        let registrable_at = host.len().saturating_sub(domain.as_bytes().len());
        let registrable = host.get(registrable_at..).unwrap_or(host);
        let brand_len = registrable.len().saturating_sub(domain.suffix().as_bytes().len() + 1);
        let brand = registrable.get(..brand_len).filter(|b| !b.is_empty()).unwrap_or(registrable);
        let subdomain = host.get(..registrable_at).unwrap_or("").trim_end_matches('.');
        Self { host, registrable, brand, subdomain }
    }
}

/// Search engines recognised under any public suffix (`google.de`, `yahoo.co.jp`, `yandex.com.tr`).
const SEARCH_BRANDS: &[&str] = &[
    "google",
    "bing",
    "yahoo",
    "yandex",
    "baidu",
    "duckduckgo",
    "ecosia",
    "qwant",
    "startpage",
    "naver",
    "seznam",
    "sogou",
    "daum",
    "ask",
    "aol",
    "mojeek",
    "kagi",
    "swisscows",
    "metager",
    "presearch",
    "perplexity",
];

/// Search engines whose brand name alone is too ambiguous: matched on the exact host or registrable
/// domain.
const SEARCH_HOSTS: &[&str] = &["search.brave.com", "ya.ru", "so.com", "m.so.com", "you.com", "search.naver.com"];

/// Subdomains of search brands that are products, not search result pages (`docs.google.com`).
const NOT_SEARCH_SUBDOMAINS: &[&str] = &[
    "accounts",
    "ads",
    "calendar",
    "chat",
    "cloud",
    "developers",
    "docs",
    "drive",
    "groups",
    "meet",
    "photos",
    "play",
    "sites",
    "support",
    "translate",
];

/// Social networks recognised under any public suffix.
const SOCIAL_BRANDS: &[&str] = &[
    "facebook",
    "instagram",
    "twitter",
    "linkedin",
    "reddit",
    "youtube",
    "tiktok",
    "pinterest",
    "vk",
    "weibo",
    "tumblr",
    "quora",
    "snapchat",
    "telegram",
    "whatsapp",
    "discord",
    "discordapp",
    "xing",
    "threads",
    "bsky",
    "douyin",
    "mastodon",
];

/// Social networks and their link shorteners matched on the exact host or registrable domain.
const SOCIAL_HOSTS: &[&str] = &[
    "t.co",
    "x.com",
    "lnkd.in",
    "fb.me",
    "fb.com",
    "fb.watch",
    "m.me",
    "messenger.com",
    "youtu.be",
    "redd.it",
    "pin.it",
    "t.me",
    "bsky.app",
    "threads.net",
    "ok.ru",
    "line.me",
    "news.ycombinator.com",
    "slack-redir.net",
    "lemmy.world",
];

/// Webmail hosts (exact host). Hosts whose first label is `mail` or `webmail` count as webmail too.
const WEBMAIL_HOSTS: &[&str] = &[
    "mail.google.com",
    "inbox.google.com",
    "outlook.live.com",
    "outlook.office.com",
    "outlook.office365.com",
    "mail.yahoo.com",
    "mail.yahoo.co.jp",
    "mail.aol.com",
    "mail.proton.me",
    "mail.protonmail.com",
    "mail.zoho.com",
    "mail.yandex.ru",
    "mail.yandex.com",
    "e.mail.ru",
    "mail.qq.com",
    "navigator.gmx.net",
    "navigator-bs.gmx.com",
    "3c.web.de",
    "3c-bap.web.de",
    "email.t-online.de",
    "webmail.freenet.de",
    "mail.icloud.com",
];

/// Android apps that send `android-app://<package>` referrers.
const APP_CATEGORIES: &[(&str, &str)] = &[
    ("com.google.android.googlequicksearchbox", SEARCH),
    ("com.microsoft.bing", SEARCH),
    ("com.duckduckgo.mobile.android", SEARCH),
    ("ru.yandex.searchplugin", SEARCH),
    ("com.google.android.gm", EMAIL),
    ("com.microsoft.office.outlook", EMAIL),
    ("com.yahoo.mobile.client.android.mail", EMAIL),
    ("ch.protonmail.android", EMAIL),
    ("com.samsung.android.email.provider", EMAIL),
    ("com.readdle.spark", EMAIL),
    ("me.bluemail.mail", EMAIL),
    ("com.facebook.katana", SOCIAL),
    ("com.facebook.orca", SOCIAL),
    ("com.instagram.android", SOCIAL),
    ("com.instagram.barcelona", SOCIAL),
    ("com.twitter.android", SOCIAL),
    ("com.linkedin.android", SOCIAL),
    ("com.reddit.frontpage", SOCIAL),
    ("com.pinterest", SOCIAL),
    ("com.zhiliaoapp.musically", SOCIAL),
    ("com.ss.android.ugc.trill", SOCIAL),
    ("com.google.android.youtube", SOCIAL),
    ("org.telegram.messenger", SOCIAL),
    ("com.whatsapp", SOCIAL),
    ("com.discord", SOCIAL),
    ("com.Slack", SOCIAL),
    ("xyz.blueskyweb.app", SOCIAL),
];

/// `utm_medium` values of paid traffic (compared lower-cased).
const PAID_MEDIUMS: &[&str] = &[
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "paid-search",
    "paid_social",
    "paid-social",
    "paidsocial",
    "display",
    "cpm",
    "cpv",
    "banner",
    "retargeting",
];

/// `utm_medium` values of e-mail campaigns (compared lower-cased).
const EMAIL_MEDIUMS: &[&str] = &["email", "e-mail", "e_mail", "mail", "newsletter"];

/// `utm_source` values that name a search engine or social network without a referrer (apps and
/// browsers that strip referrers still keep the campaign tags).
const SEARCH_SOURCES: &[&str] = &["ddg", "brave"];
const SOCIAL_SOURCES: &[&str] = &["fb", "ig", "x", "hn", "hackernews", "hacker_news", "ycombinator", "yt", "bluesky"];

/// Words that referrer spammers put in their domains.
const SPAM_WORDS: &[&str] = &[
    "seo",
    "traffic",
    "buttons",
    "share-button",
    "free-share",
    "backlink",
    "webmaster",
    "monetiz",
    "makemoney",
    "make-money",
    "ranking",
    "rank-checker",
    "casino",
    "viagra",
    "porn",
];

/// Top-level domains over-represented in referrer spam (cheap or free registration).
const SPAM_PRONE_TLDS: &[&str] = &[
    "xyz", "top", "club", "online", "site", "icu", "win", "bid", "loan", "gq", "ml", "cf", "tk", "ga", "work", "click",
    "buzz", "rest", "fit", "cyou", "pw", "su", "date", "racing", "review", "stream", "download", "men",
];

/// Classifies referrers against the page they led to; built once, holds the spam blocklist.
pub struct ReferrerClassifier {
    spam_domains: HashSet<String>,
    /// What each referrer URL says by itself, so the URL and public-suffix work is done once per
    /// distinct referrer (most are a site's own pages and a few search engines).
    facts: quick_cache::sync::Cache<String, Option<Arc<ReferrerFacts>>>,
}

/// How many distinct referrers keep their [`ReferrerFacts`].
const CACHE_CAPACITY: usize = 16_384;
/// Longer referrers are judged afresh each time rather than crowd the cache.
const MAX_CACHED_REFERRER_LEN: usize = 512;

/// Everything the rules need from a referrer URL that does not depend on the page.
#[derive(Debug)]
struct ReferrerFacts {
    /// Lower-cased.
    host: String,
    path: String,
    /// `android-app://<package>/` referrers: the host is an app's package name.
    is_app: bool,
    app_category: Option<&'static str>,
    webmail: bool,
    registrable: String,
    search: bool,
    social: bool,
    blocklisted: bool,
    /// The spam heuristics that look only at the host (see [`ReferrerClassifier::spam`]).
    host_spam_score: f64,
}

impl Default for ReferrerClassifier {
    fn default() -> Self {
        Self::with_spam_list(SPAM_LIST)
    }
}

impl ReferrerClassifier {
    /// A classifier with a spam blocklist in the format of `data/referrer-spam.txt`: one domain per
    /// line, `#` comments and blank lines ignored.
    pub fn with_spam_list(list: &str) -> Self {
        let spam_domains = list
            .lines()
            .map(|line| line.split('#').next().unwrap_or("").trim().to_ascii_lowercase())
            .filter(|line| !line.is_empty())
            .collect();
        Self { spam_domains, facts: quick_cache::sync::Cache::new(CACHE_CAPACITY) }
    }

    /// The channel a visit came through, and whether its referrer is spam. Rules, first match wins:
    ///
    /// 1. **paid**: `utm_medium` is a paid medium (cpc, ppc, paid, paidsearch, paid_social, display,
    ///    cpm, banner, ...) or the page URL carried an ad click id (`gclid`, `fbclid`, ...).
    /// 2. **email**: `utm_medium` is email/newsletter, or the referrer is a webmail host or mail app.
    /// 3. **direct**: no usable referrer and no `utm_source`/`utm_medium`/`utm_campaign`.
    /// 4. **internal**: the referrer's registrable domain is the page's (`blog.example.com` →
    ///    `www.example.com`).
    /// 5. **search** / **social**: the referrer is a known search engine / social network (or its app).
    /// 6. **search** / **social** without a referrer: `utm_source` names one (`utm_source=facebook`).
    /// 7. **referral**: everything else.
    pub fn classify(&self, referrer: Option<&str>, page: &PageFields) -> ReferrerInfo {
        let facts = referrer.map(str::trim).filter(|r| !r.is_empty()).and_then(|r| self.facts(r));
        let facts = facts.as_deref();
        let domain = facts.map(|f| f.host.strip_prefix("www.").unwrap_or(&f.host).to_string());
        let category = self.category(facts, page);
        let (is_spam, spam_score) = match facts {
            Some(facts) if category != INTERNAL => Self::spam(facts, category, page),
            _ => (false, 0.0),
        };
        ReferrerInfo { domain, category, is_spam, spam_score }
    }

    fn facts(&self, referrer: &str) -> Option<Arc<ReferrerFacts>> {
        if referrer.len() > MAX_CACHED_REFERRER_LEN {
            return self.judge(referrer).map(Arc::new);
        }
        if let Some(hit) = self.facts.get(referrer) {
            return hit;
        }
        let facts = self.judge(referrer).map(Arc::new);
        self.facts.insert(referrer.to_string(), facts.clone());
        facts
    }

    /// The page-independent facts of a referrer; `None` unless it is a URL with a host.
    fn judge(&self, referrer: &str) -> Option<ReferrerFacts> {
        let url = Url::parse(referrer).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        let is_app = url.scheme() == "android-app";
        let app_category = if is_app {
            APP_CATEGORIES.iter().find(|(p, _)| p.eq_ignore_ascii_case(&host)).map(|(_, category)| *category)
        } else {
            None
        };
        let parts = HostParts::new(&host);
        let mut host_spam_score: f64 = 0.0;
        if SPAM_WORDS.iter().any(|w| parts.registrable.contains(w)) {
            host_spam_score += 0.3;
        }
        if psl::suffix_str(parts.registrable).is_some_and(|tld| SPAM_PRONE_TLDS.contains(&tld)) {
            host_spam_score += 0.15;
        }
        if parts.brand.matches('-').count() >= 3 {
            host_spam_score += 0.1;
        }
        Some(ReferrerFacts {
            path: url.path().to_string(),
            is_app,
            app_category,
            webmail: !is_app && is_webmail(&host),
            registrable: parts.registrable.to_string(),
            search: is_search(&parts),
            social: is_social(&parts),
            blocklisted: self.is_blocklisted(&host),
            host_spam_score,
            host,
        })
    }

    fn category(&self, facts: Option<&ReferrerFacts>, page: &PageFields) -> &'static str {
        let medium = page.utm_medium.as_deref().map(str::to_ascii_lowercase);
        let medium = medium.as_deref();
        if page.click_id_type.is_some() || medium.is_some_and(|m| PAID_MEDIUMS.contains(&m)) {
            return PAID;
        }
        let app_category = facts.and_then(|f| f.app_category);
        if medium.is_some_and(|m| EMAIL_MEDIUMS.contains(&m))
            || app_category == Some(EMAIL)
            || facts.is_some_and(|f| f.webmail)
        {
            return EMAIL;
        }
        let Some(facts) = facts else {
            let tagged = page.utm_source.is_some() || page.utm_medium.is_some() || page.utm_campaign.is_some();
            return match page.utm_source.as_deref() {
                _ if !tagged => DIRECT,
                Some(source) => source_category(source),
                None => REFERRAL,
            };
        };
        if let Some(category) = app_category {
            return category;
        }
        if facts.is_app {
            return REFERRAL;
        }
        let page_host = page.hostname.as_deref();
        if page_host.is_some_and(|p| registrable_domain(p).eq_ignore_ascii_case(&facts.registrable)) {
            return INTERNAL;
        }
        if facts.search {
            SEARCH
        } else if facts.social {
            SOCIAL
        } else {
            REFERRAL
        }
    }

    /// Spam verdict and score for a referrer that is not internal:
    ///
    /// * **Blocklist**: the host or any parent domain of it is in `data/referrer-spam.txt` → spam, 1.0.
    /// * Otherwise known search/social/email referrers score 0. Other referrers collect partial scores,
    ///   capped at 0.45 so that heuristics alone never mark a visit as spam (they help triage):
    ///   - a spam word in the domain (seo, traffic, buttons, free-share, backlink, monetiz...): +0.3;
    ///   - a top-level domain over-represented in spam (.xyz, .top, .icu, .tk, ...): +0.15;
    ///   - the referrer URL has the page's own path on another site (bots forge referrers by pasting
    ///     the page path onto their domain): +0.15, only for paths other than `/`;
    ///   - three or more hyphens in the domain name (`get-free-traffic-now`): +0.1.
    fn spam(facts: &ReferrerFacts, category: &str, page: &PageFields) -> (bool, f64) {
        if facts.blocklisted {
            return (true, 1.0);
        }
        if matches!(category, SEARCH | SOCIAL | EMAIL) {
            return (false, 0.0);
        }
        let mut score = facts.host_spam_score;
        if facts.path.len() > 1 && page.path.as_deref() == Some(facts.path.as_str()) {
            score += 0.15;
        }
        (false, score.min(MAX_HEURISTIC_SCORE))
    }

    /// Whether the host, or a domain it is a subdomain of, is on the blocklist.
    pub fn is_blocklisted(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        let mut rest = host;
        loop {
            if self.spam_domains.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return false,
            }
        }
    }
}

fn is_webmail(host: &str) -> bool {
    WEBMAIL_HOSTS.contains(&host) || host.starts_with("mail.") || host.starts_with("webmail.")
}

fn is_search(host: &HostParts<'_>) -> bool {
    if SEARCH_HOSTS.contains(&host.host) || SEARCH_HOSTS.contains(&host.registrable) {
        return true;
    }
    SEARCH_BRANDS.contains(&host.brand) && !host.subdomain.split('.').any(|l| NOT_SEARCH_SUBDOMAINS.contains(&l))
}

fn is_social(host: &HostParts<'_>) -> bool {
    SOCIAL_HOSTS.contains(&host.host) || SOCIAL_HOSTS.contains(&host.registrable) || SOCIAL_BRANDS.contains(&host.brand)
}

/// The category named by a `utm_source` when there is no referrer: `google`, `facebook.com` and
/// `fb` all count; anything else is a referral.
fn source_category(source: &str) -> &'static str {
    let source = source.trim().to_ascii_lowercase();
    let source = source.strip_prefix("www.").unwrap_or(&source);
    let name = if source.contains('.') { HostParts::new(source).brand } else { source };
    if SEARCH_BRANDS.contains(&name) || SEARCH_SOURCES.contains(&name) || SEARCH_HOSTS.contains(&source) {
        SEARCH
    } else if SOCIAL_BRANDS.contains(&name) || SOCIAL_SOURCES.contains(&name) || SOCIAL_HOSTS.contains(&source) {
        SOCIAL
    } else {
        REFERRAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::url::PageParser;

    fn page(url: &str) -> PageFields {
        PageParser::default().parse(url).unwrap_or_default()
    }

    #[test]
    fn referrer_domains() {
        assert_eq!(domain("https://www.google.com/search?q=x").as_deref(), Some("google.com"));
        assert_eq!(domain("https://news.ycombinator.com/").as_deref(), Some("news.ycombinator.com"));
        assert_eq!(domain("HTTPS://WWW.Example.COM/a").as_deref(), Some("example.com"));
        assert_eq!(domain("android-app://com.google.android.gm").as_deref(), Some("com.google.android.gm"));
        assert_eq!(domain(""), None);
        assert_eq!(domain("not a url"), None);
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable_domain("www.google.co.uk"), "google.co.uk");
        assert_eq!(registrable_domain("shop.example.com"), "example.com");
        assert_eq!(registrable_domain("user.github.io"), "user.github.io");
        assert_eq!(registrable_domain("localhost"), "localhost");
        assert_eq!(registrable_domain("192.168.1.10"), "192.168.1.10");
        assert_eq!(registrable_domain("[::1]"), "[::1]");
        assert_eq!(
            HostParts::new("de.search.yahoo.co.jp"),
            HostParts {
                host: "de.search.yahoo.co.jp",
                registrable: "yahoo.co.jp",
                brand: "yahoo",
                subdomain: "de.search"
            }
        );
        assert_eq!(HostParts::new("localhost").brand, "localhost");
        assert_eq!(HostParts::new("co.uk").brand, "co.uk");
    }

    #[test]
    fn categories() {
        let c = ReferrerClassifier::default();
        let landing = page("https://www.example.com/pricing");
        let cases: &[(Option<&str>, &str, &str)] = &[
            (Some("https://www.google.de/"), "https://www.example.com/pricing", SEARCH),
            (Some("https://www.google.co.uk/search?q=footfall"), "https://www.example.com/", SEARCH),
            (Some("https://www.bing.com/"), "https://www.example.com/", SEARCH),
            (Some("https://duckduckgo.com/"), "https://www.example.com/", SEARCH),
            (Some("https://search.brave.com/search?q=x"), "https://www.example.com/", SEARCH),
            (Some("https://yandex.ru/"), "https://www.example.com/", SEARCH),
            (Some("android-app://com.google.android.googlequicksearchbox/"), "https://www.example.com/", SEARCH),
            (Some("https://docs.google.com/document/d/1"), "https://www.example.com/", REFERRAL),
            (Some("https://t.co/abc123"), "https://www.example.com/", SOCIAL),
            (Some("https://l.facebook.com/"), "https://www.example.com/", SOCIAL),
            (Some("https://www.linkedin.com/"), "https://www.example.com/", SOCIAL),
            (Some("https://news.ycombinator.com/"), "https://www.example.com/", SOCIAL),
            (Some("https://old.reddit.com/r/rust/"), "https://www.example.com/", SOCIAL),
            (Some("https://bsky.app/profile/x"), "https://www.example.com/", SOCIAL),
            (Some("android-app://com.google.android.gm"), "https://www.example.com/", EMAIL),
            (Some("https://mail.google.com/"), "https://www.example.com/", EMAIL),
            (Some("https://outlook.live.com/"), "https://www.example.com/", EMAIL),
            (None, "https://www.example.com/?utm_source=newsletter&utm_medium=email", EMAIL),
            (Some("https://www.google.com/"), "https://www.example.com/?utm_medium=cpc&utm_source=google", PAID),
            (None, "https://www.example.com/?gclid=abc", PAID),
            (Some("https://www.facebook.com/"), "https://www.example.com/?fbclid=xyz", PAID),
            (None, "https://www.example.com/?utm_medium=Paid_Social", PAID),
            (Some("https://blog.example.com/post"), "https://www.example.com/", INTERNAL),
            (Some("https://www.example.com/"), "https://example.com/pricing", INTERNAL),
            (None, "https://www.example.com/", DIRECT),
            (Some(""), "https://www.example.com/", DIRECT),
            (Some("garbage"), "https://www.example.com/", DIRECT),
            (None, "https://www.example.com/?utm_source=facebook", SOCIAL),
            (None, "https://www.example.com/?utm_source=twitter.com&utm_medium=social", SOCIAL),
            (None, "https://www.example.com/?utm_source=google", SEARCH),
            (None, "https://www.example.com/?ref=producthunt", REFERRAL),
            (Some("https://github.com/footfall/footfall"), "https://www.example.com/", REFERRAL),
            (Some("android-app://com.example.reader"), "https://www.example.com/", REFERRAL),
        ];
        for (referrer, url, expected) in cases {
            let p = page(url);
            assert_eq!(c.classify(*referrer, &p).category, *expected, "{referrer:?} → {url}");
        }
        let info = c.classify(Some("https://www.google.de/"), &landing);
        assert_eq!(
            info,
            ReferrerInfo { domain: Some("google.de".into()), category: SEARCH, is_spam: false, spam_score: 0.0 }
        );
    }

    #[test]
    fn a_cached_referrer_is_still_judged_against_each_page() {
        let c = ReferrerClassifier::default();
        let seo = "http://best-traffic.com/pricing";
        // Twice round, so the second round reads every referrer's facts from the cache.
        for _ in 0..2 {
            let blog = Some("https://blog.example.com/post");
            assert_eq!(c.classify(blog, &page("https://www.example.com/")).category, INTERNAL);
            assert_eq!(c.classify(blog, &page("https://other.org/")).category, REFERRAL);
            let google = Some("https://www.google.com/");
            assert_eq!(c.classify(google, &page("https://www.example.com/?utm_medium=cpc")).category, PAID);
            assert_eq!(c.classify(google, &page("https://www.example.com/")).category, SEARCH);
            let same_path = c.classify(Some(seo), &page("https://www.example.com/pricing")).spam_score;
            let other_path = c.classify(Some(seo), &page("https://www.example.com/about")).spam_score;
            assert!((same_path - other_path - 0.15).abs() < 1e-9, "{same_path} vs {other_path}");
        }
    }

    #[test]
    fn spam_blocklist_covers_subdomains() {
        let c = ReferrerClassifier::default();
        let p = page("https://www.example.com/");
        for spam in [
            "http://semalt.com/",
            "https://forum.semalt.com/crawler",
            "http://www.darodar.com/",
            "http://site1.free-share-buttons.com",
        ] {
            let info = c.classify(Some(spam), &p);
            assert!(info.is_spam, "{spam}");
            assert_eq!(info.spam_score, 1.0, "{spam}");
            assert_eq!(info.category, REFERRAL);
        }
        // A domain that merely ends with a listed name is not a subdomain of it.
        assert!(!c.is_blocklisted("notsemalt.com"));
        assert!(!c.classify(Some("https://github.com/"), &p).is_spam);
    }

    #[test]
    fn spam_heuristics_stay_below_half() {
        let c = ReferrerClassifier::default();
        let p = page("https://www.example.com/pricing");
        let info = c.classify(Some("http://get-free-seo-traffic-fast.xyz/pricing"), &p);
        assert!(!info.is_spam);
        assert!(info.spam_score > 0.3 && info.spam_score < 0.5, "{}", info.spam_score);
        let info = c.classify(Some("http://best-traffic.com/"), &p);
        assert!((info.spam_score - 0.3).abs() < 1e-9, "{}", info.spam_score);
        assert_eq!(c.classify(Some("https://www.google.com/"), &p).spam_score, 0.0);
        assert_eq!(c.classify(Some("https://blog.rust-lang.org/"), &p).spam_score, 0.0);
        assert_eq!(c.classify(Some("https://www.example.com/x"), &p).spam_score, 0.0);
    }

    #[test]
    fn bundled_spam_list_is_well_formed() {
        let c = ReferrerClassifier::default();
        assert!(c.spam_domains.len() >= 60, "{}", c.spam_domains.len());
        for d in &c.spam_domains {
            assert!(d.contains('.') && !d.contains(['/', ' ', ':']) && !d.starts_with("www."), "{d}");
        }
    }
}
