//! The fixed vocabulary real traffic is drawn from: browsers and bots, countries and their address
//! ranges, referrers, campaigns, recurring JavaScript errors, site-search terms. Weights are rough
//! shares of a typical European/US content-and-shop site, not measurements of one.

/// A user-agent template: `{v}` is replaced by a version from `versions`.
pub struct Client {
    pub template: &'static str,
    pub versions: &'static [&'static str],
    pub weight: f64,
    pub device: Device,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
    Bot,
}

const CHROME: &[&str] = &["128.0.0.0", "129.0.0.0", "130.0.0.0", "131.0.0.0", "132.0.0.0", "133.0.0.0"];
const FIREFOX: &[&str] = &["131.0", "132.0", "133.0", "134.0"];
const SAFARI: &[&str] = &["17.6", "18.0", "18.1", "18.2"];
const IOS: &[&str] = &["17_6", "18_0", "18_1", "18_2"];
const NONE: &[&str] = &[""];

pub const CLIENTS: &[Client] = &[
    Client {
        template: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36",
        versions: CHROME,
        weight: 24.0,
        device: Device::Desktop,
    },
    Client {
        template: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36",
        versions: CHROME,
        weight: 9.0,
        device: Device::Desktop,
    },
    Client {
        template: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36",
        versions: CHROME,
        weight: 2.0,
        device: Device::Desktop,
    },
    Client {
        template: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36 Edg/{v}",
        versions: CHROME,
        weight: 6.0,
        device: Device::Desktop,
    },
    Client {
        template: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}) Gecko/20100101 Firefox/{v}",
        versions: FIREFOX,
        weight: 4.0,
        device: Device::Desktop,
    },
    Client {
        template: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{v}) Gecko/20100101 Firefox/{v}",
        versions: FIREFOX,
        weight: 1.0,
        device: Device::Desktop,
    },
    Client {
        template: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15",
        versions: SAFARI,
        weight: 5.0,
        device: Device::Desktop,
    },
    Client {
        template: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Mobile Safari/537.36",
        versions: CHROME,
        weight: 19.0,
        device: Device::Mobile,
    },
    Client {
        template: "Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        versions: IOS,
        weight: 15.0,
        device: Device::Mobile,
    },
    Client {
        template: "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/{v} Mobile Safari/537.36",
        versions: CHROME,
        weight: 3.0,
        device: Device::Mobile,
    },
    Client {
        template: "Mozilla/5.0 (iPad; CPU OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        versions: IOS,
        weight: 2.5,
        device: Device::Tablet,
    },
    Client {
        template: "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36",
        versions: CHROME,
        weight: 1.0,
        device: Device::Tablet,
    },
    // ~3% of visitors are bots that run JavaScript (those that don't never reach a tracker).
    Client {
        template: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        versions: NONE,
        weight: 1.0,
        device: Device::Bot,
    },
    Client {
        template: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        versions: NONE,
        weight: 0.5,
        device: Device::Bot,
    },
    Client {
        template: "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        versions: NONE,
        weight: 0.5,
        device: Device::Bot,
    },
    Client {
        template: "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        versions: NONE,
        weight: 0.3,
        device: Device::Bot,
    },
    Client {
        template: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/{v} Safari/537.36",
        versions: CHROME,
        weight: 0.7,
        device: Device::Bot,
    },
];

/// A country: its weight, language, time zone and a few public IPv4 /16 prefixes of networks
/// registered there, so a GeoIP database resolves the addresses to it.
pub struct Country {
    pub code: &'static str,
    pub weight: f64,
    pub language: &'static str,
    pub timezone: &'static str,
    pub prefixes: &'static [(u8, u8)],
}

pub const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        weight: 30.0,
        language: "en-US",
        timezone: "America/New_York",
        prefixes: &[(24, 48), (68, 80), (73, 162), (98, 207), (174, 62)],
    },
    Country {
        code: "DE",
        weight: 14.0,
        language: "de-DE",
        timezone: "Europe/Berlin",
        prefixes: &[(79, 192), (84, 150), (91, 64), (93, 192), (217, 80)],
    },
    Country {
        code: "GB",
        weight: 9.0,
        language: "en-GB",
        timezone: "Europe/London",
        prefixes: &[(81, 96), (86, 128), (90, 192), (109, 144)],
    },
    Country {
        code: "FR",
        weight: 7.0,
        language: "fr-FR",
        timezone: "Europe/Paris",
        prefixes: &[(82, 64), (86, 200), (90, 0), (176, 128)],
    },
    Country {
        code: "IN",
        weight: 6.0,
        language: "en-IN",
        timezone: "Asia/Kolkata",
        prefixes: &[(49, 36), (117, 192), (122, 160)],
    },
    Country {
        code: "NL",
        weight: 4.0,
        language: "nl-NL",
        timezone: "Europe/Amsterdam",
        prefixes: &[(77, 160), (84, 80), (145, 53)],
    },
    Country {
        code: "CA",
        weight: 4.0,
        language: "en-CA",
        timezone: "America/Toronto",
        prefixes: &[(70, 24), (99, 224), (142, 112)],
    },
    Country {
        code: "BR",
        weight: 4.0,
        language: "pt-BR",
        timezone: "America/Sao_Paulo",
        prefixes: &[(177, 32), (179, 96), (187, 0)],
    },
    Country {
        code: "ES",
        weight: 3.0,
        language: "es-ES",
        timezone: "Europe/Madrid",
        prefixes: &[(83, 32), (88, 0), (95, 120)],
    },
    Country {
        code: "JP",
        weight: 3.0,
        language: "ja-JP",
        timezone: "Asia/Tokyo",
        prefixes: &[(60, 32), (126, 0), (153, 240)],
    },
    Country {
        code: "AU",
        weight: 2.5,
        language: "en-AU",
        timezone: "Australia/Sydney",
        prefixes: &[(101, 160), (120, 144), (203, 206)],
    },
    Country {
        code: "PL",
        weight: 2.5,
        language: "pl-PL",
        timezone: "Europe/Warsaw",
        prefixes: &[(83, 0), (89, 64), (178, 36)],
    },
    Country {
        code: "SE",
        weight: 2.0,
        language: "sv-SE",
        timezone: "Europe/Stockholm",
        prefixes: &[(78, 64), (90, 224), (155, 4)],
    },
    Country {
        code: "IT",
        weight: 3.0,
        language: "it-IT",
        timezone: "Europe/Rome",
        prefixes: &[(79, 0), (87, 0), (151, 28)],
    },
    Country {
        code: "CH",
        weight: 1.5,
        language: "de-CH",
        timezone: "Europe/Zurich",
        prefixes: &[(83, 76), (178, 192), (212, 243)],
    },
    Country {
        code: "AT",
        weight: 1.5,
        language: "de-AT",
        timezone: "Europe/Vienna",
        prefixes: &[(80, 108), (84, 112), (178, 114)],
    },
];

/// Where a session's first pageview came from.
pub struct Source {
    pub referrer: Option<&'static str>,
    /// Appended to the landing URL (UTM tags, click ids).
    pub query: &'static str,
    pub weight: f64,
}

pub const SOURCES: &[Source] = &[
    Source { referrer: None, query: "", weight: 33.0 },
    Source { referrer: Some("https://www.google.com/"), query: "", weight: 22.0 },
    Source { referrer: Some("https://www.google.de/"), query: "", weight: 3.0 },
    Source { referrer: Some("https://www.bing.com/"), query: "", weight: 2.5 },
    Source { referrer: Some("https://duckduckgo.com/"), query: "", weight: 2.0 },
    Source { referrer: Some("https://www.ecosia.org/"), query: "", weight: 0.5 },
    Source { referrer: Some("https://search.yahoo.com/"), query: "", weight: 0.5 },
    Source {
        referrer: Some("https://www.google.com/"),
        query: "?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=Cj0KCQiA",
        weight: 3.0,
    },
    Source {
        referrer: Some("https://www.google.com/"),
        query: "?utm_source=google&utm_medium=cpc&utm_campaign=generic&utm_term=web+analytics&gclid=EAIaIQobCh",
        weight: 1.5,
    },
    Source { referrer: Some("https://t.co/"), query: "", weight: 3.0 },
    Source { referrer: Some("https://t.co/"), query: "?utm_source=twitter&utm_medium=social", weight: 1.5 },
    Source { referrer: Some("https://www.facebook.com/"), query: "", weight: 2.0 },
    Source {
        referrer: Some("https://l.facebook.com/"),
        query: "?utm_source=facebook&utm_medium=paid_social&utm_campaign=retargeting&fbclid=IwAR2x",
        weight: 1.5,
    },
    Source { referrer: Some("https://www.linkedin.com/"), query: "", weight: 1.5 },
    Source { referrer: Some("https://www.reddit.com/r/webdev/"), query: "", weight: 1.5 },
    Source { referrer: Some("https://www.youtube.com/"), query: "", weight: 1.0 },
    Source {
        referrer: Some("https://www.instagram.com/"),
        query: "?utm_source=instagram&utm_medium=social",
        weight: 1.0,
    },
    Source { referrer: Some("https://news.ycombinator.com/"), query: "", weight: 1.5 },
    Source { referrer: Some("https://github.com/"), query: "", weight: 1.0 },
    Source { referrer: Some("https://stackoverflow.com/questions/78123456"), query: "", weight: 0.8 },
    Source { referrer: Some("https://dev.to/"), query: "", weight: 0.6 },
    Source { referrer: Some("https://www.producthunt.com/"), query: "?ref=producthunt", weight: 0.6 },
    Source { referrer: Some("https://chatgpt.com/"), query: "?utm_source=chatgpt.com", weight: 1.5 },
    Source { referrer: None, query: "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-digest", weight: 4.0 },
    Source {
        referrer: None,
        query: "?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday&utm_content=hero",
        weight: 2.0,
    },
    Source { referrer: Some("https://partner-blog.example.org/review"), query: "?ref=partner", weight: 1.0 },
    // Referrer spam, which enrichment should flag.
    Source { referrer: Some("http://buttons-for-website.com/"), query: "", weight: 0.3 },
    Source { referrer: Some("https://semalt.com/"), query: "", weight: 0.2 },
];

/// A recurring error: the same message and place every time, so fingerprints group.
pub struct ErrorKind {
    pub error_type: &'static str,
    pub message: &'static str,
    pub source_file: &'static str,
    pub line: i32,
    pub column: i32,
}

pub const ERRORS: &[ErrorKind] = &[
    ErrorKind {
        error_type: "javascript",
        message: "TypeError: Cannot read properties of undefined (reading 'length')",
        source_file: "/assets/app.4f2a1c.js",
        line: 1,
        column: 48213,
    },
    ErrorKind {
        error_type: "javascript",
        message: "TypeError: null is not an object (evaluating 'el.addEventListener')",
        source_file: "/assets/app.4f2a1c.js",
        line: 1,
        column: 10233,
    },
    ErrorKind {
        error_type: "unhandledrejection",
        message: "Error: Request failed with status code 502",
        source_file: "/assets/api.9be0d1.js",
        line: 2,
        column: 771,
    },
    ErrorKind {
        error_type: "network",
        message: "Failed to fetch: GET /api/cart 503",
        source_file: "/assets/cart.71ac2e.js",
        line: 1,
        column: 3012,
    },
    ErrorKind {
        error_type: "javascript",
        message: "ReferenceError: gtag is not defined",
        source_file: "/assets/consent.js",
        line: 14,
        column: 5,
    },
    ErrorKind {
        error_type: "javascript",
        message: "ResizeObserver loop completed with undelivered notifications.",
        source_file: "/assets/vendor.0c3b9f.js",
        line: 1,
        column: 90211,
    },
    ErrorKind {
        error_type: "javascript",
        message: "SyntaxError: Unexpected token '<'",
        source_file: "/assets/chunk-checkout.js",
        line: 1,
        column: 1,
    },
    ErrorKind {
        error_type: "network",
        message: "Failed to load resource: net::ERR_BLOCKED_BY_CLIENT",
        source_file: "/js/script.js",
        line: 0,
        column: 0,
    },
    ErrorKind {
        error_type: "console",
        message: "Warning: Each child in a list should have a unique \"key\" prop.",
        source_file: "/assets/vendor.0c3b9f.js",
        line: 1,
        column: 55102,
    },
    ErrorKind {
        error_type: "unhandledrejection",
        message: "AbortError: The user aborted a request.",
        source_file: "/assets/search.2d1f7e.js",
        line: 1,
        column: 2210,
    },
    ErrorKind {
        error_type: "javascript",
        message: "TypeError: Failed to execute 'observe' on 'IntersectionObserver'",
        source_file: "/assets/lazy.8e4d2b.js",
        line: 3,
        column: 117,
    },
    ErrorKind { error_type: "javascript", message: "Script error.", source_file: "", line: 0, column: 0 },
];

pub const SEARCH_TERMS: &[&str] = &[
    "pricing",
    "api",
    "refund",
    "shipping",
    "login",
    "export csv",
    "gdpr",
    "invoice",
    "black friday",
    "size guide",
    "dark mode",
    "integrations",
    "cancel subscription",
    "password reset",
    "self hosting",
    "discount code",
    "delivery time",
    "team plan",
    "sso",
    "webhooks",
];

pub const CLICK_TARGETS: &[(&str, &str)] = &[
    ("a.nav-link", "Pricing"),
    ("a.nav-link", "Docs"),
    ("button#cta-primary", "Start free trial"),
    ("button.add-to-cart", "Add to cart"),
    ("a.card-link", "Read more"),
    ("button#menu-toggle", ""),
    ("a.footer-link", "Privacy"),
    ("button.accordion", "How does billing work?"),
    ("a.product-tile", "Learn more"),
    ("input#search", ""),
    ("button.close", "×"),
    ("img.hero", ""),
];

pub const WORDS: &[&str] = &[
    "analytics",
    "privacy",
    "cookies",
    "gdpr",
    "dashboards",
    "retention",
    "funnels",
    "goals",
    "events",
    "sessions",
    "bounce",
    "referrers",
    "campaigns",
    "self-hosting",
    "parquet",
    "sql",
    "exports",
    "api",
    "tracker",
    "performance",
    "pricing",
    "teams",
    "alerts",
    "reports",
    "realtime",
    "segments",
    "revenue",
    "shoes",
    "jackets",
    "backpacks",
];
